"""Sending work to the SQS queues."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pixcrawler import aws
from pixcrawler.messages import Message

SQS_BATCH_LIMIT = 10


class QueueSendError(RuntimeError):
    """A message could not be queued; the caller must not leave a job behind that nobody will run."""


MAX_DELAY = 900
"""SQS delays a message by at most 15 minutes."""


def send(queue_url: str, message: Message, delay: float = 0) -> str:
    """Queue one message, delivered after `delay` seconds (rounded up, at most 15 minutes); its SQS id."""
    if not queue_url:
        raise QueueSendError("queue URL is not configured")
    try:
        return aws.sqs().send_message(
            QueueUrl=queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=min(MAX_DELAY, math.ceil(delay)),
        )["MessageId"]
    except Exception as error:
        raise QueueSendError(f"could not queue {type(message).__name__}: {error}") from error


def send_batch(queue_url: str, messages: Sequence[Message]) -> list[str]:
    """Queue many messages, ten per call, retrying the entries SQS reports as failed; returns message ids."""
    ids: list[str] = []
    for start in range(0, len(messages), SQS_BATCH_LIMIT):
        ids.extend(_send_ten(queue_url, messages[start : start + SQS_BATCH_LIMIT]))
    return ids


def _send_ten(queue_url: str, messages: Iterable[Message], attempts: int = 3) -> list[str]:
    pending = {str(index): message for index, message in enumerate(messages)}
    sent: dict[str, str] = {}
    for _ in range(attempts):
        if not pending:
            break
        try:
            response = aws.sqs().send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": key, "MessageBody": message.model_dump_json()} for key, message in pending.items()],
            )
        except Exception as error:
            raise QueueSendError(f"could not queue a batch: {error}") from error
        for entry in response.get("Successful", []):
            sent[entry["Id"]] = entry["MessageId"]
            pending.pop(entry["Id"], None)
    if pending:
        raise QueueSendError(f"{len(pending)} message(s) were refused by SQS after {attempts} attempts")
    return [sent[key] for key in sorted(sent, key=int)]
