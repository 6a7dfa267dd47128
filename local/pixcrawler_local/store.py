"""Write-through persistence for moto's SQS: the data dir holds every accepted message.

`DurableQueues` is WSGI middleware around moto's app. After a request that may have changed a queue succeeds,
and before its answer leaves the process, it reconciles the data dir with moto's state for that queue and its
dead-letter queue. Reconciling rather than replaying requests means the disk follows whatever moto decided (a
redrive to the DLQ, a purge). On disk: `sqs/<message id>.json`, the message's queue, body, attributes and
receive count, replaced atomically on every change (a redrive to the DLQ is one rename), deleted with the
message. Objects are not moto's: `s3disk.py` stores them.

Files are written without fsync: they outlive a killed process (the page cache belongs to the kernel), not a
power cut, which is what a development stack needs.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import Message, sqs_backends

from pixcrawler_local.files import write_atomically
from pixcrawler_local.loopserver import WSGIApp

log = logging.getLogger(f"local-stack.{__name__.rpartition('.')[2]}")


# The SQS actions (JSON protocol, as boto3 speaks it) after which a queue's messages may differ.
SQS_CHANGES = frozenset(
    {
        "SendMessage",
        "SendMessageBatch",
        "ReceiveMessage",  # receive counts, and redrives to the dead-letter queue
        "DeleteMessage",
        "DeleteMessageBatch",
        "PurgeQueue",
        "DeleteQueue",
    }
)


def _json_safe(value: Any) -> Any:
    """Message attributes may carry bytes (BinaryValue); JSON carries them as base64 under a marker."""
    if isinstance(value, bytes):
        return {"__base64__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        if set(value) == {"__base64__"}:
            return base64.b64decode(value["__base64__"])
        return {name: _json_safe(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


class DurableQueues:
    """Wraps moto's WSGI app; `restore()` once the queues exist, then serve through it."""

    def __init__(self, app: WSGIApp, messages_dir: Path, region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self._app = app
        self._messages_dir = messages_dir
        self._account_id, self._region = account_id, region
        self._queue_lock = threading.Lock()
        self._stored: dict[str, tuple[str, int]] = {}  # message id -> (queue name, receive count) on disk

    @property
    def _sqs(self) -> Any:
        return sqs_backends[self._account_id][self._region]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix("AmazonSQS.")
        if target not in SQS_CHANGES:
            return self._app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        statuses: list[str] = []

        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        response = self._app(environ, recording)
        if statuses and statuses[0].startswith("2"):
            self.save_queue(json.loads(body or b"{}").get("QueueUrl", "").rstrip("/").rpartition("/")[2])
        return response

    # --- SQS ------------------------------------------------------------------------------------------------

    def save_queue(self, name: str) -> None:
        """Make the disk hold the messages moto holds in this queue and its dead-letter queue."""
        queue = self._sqs.queues.get(name)
        names = {name} | ({queue.dead_letter_queue.name} if queue and queue.dead_letter_queue else set())
        with self._queue_lock:
            live: dict[str, tuple[str, Message]] = {}
            for queue_name in names:
                if held := self._sqs.queues.get(queue_name):
                    live.update((message.id, (queue_name, message)) for message in list(held._messages))
            for message_id, (queue_name, message) in live.items():
                state = (queue_name, message.approximate_receive_count)
                if self._stored.get(message_id) != state:
                    write_atomically(self._messages_dir / f"{message_id}.json", self._message_json(queue_name, message))
                    self._stored[message_id] = state
            for message_id, (queue_name, _) in list(self._stored.items()):
                if queue_name in names and message_id not in live:
                    (self._messages_dir / f"{message_id}.json").unlink(missing_ok=True)
                    del self._stored[message_id]

    @staticmethod
    def _message_json(queue_name: str, message: Message) -> str:
        return json.dumps(
            {
                "queue": queue_name,
                "id": message.id,
                "body": message.body,
                "attributes": _json_safe(message.message_attributes),
                "system_attributes": _json_safe(message.system_attributes),
                "receive_count": message.approximate_receive_count,
                "sent_timestamp": message.sent_timestamp,
                "first_receive_timestamp": message.approximate_first_receive_timestamp,
                "group_id": message.group_id,
                "deduplication_id": message.deduplication_id,
            }
        )

    def _restore_messages(self) -> int:
        restored = 0
        for path in sorted(self._messages_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
            entry = json.loads(path.read_text())
            queue = self._sqs.queues.get(entry["queue"])
            if queue is None:
                log.warning("message %s belongs to queue %s, which no longer exists", entry["id"], entry["queue"])
                continue
            message = Message(entry["id"], entry["body"], _json_safe(entry["system_attributes"]))
            message.message_attributes = _json_safe(entry["attributes"])
            message.approximate_receive_count = entry["receive_count"]
            message.sent_timestamp = entry["sent_timestamp"]
            message.approximate_first_receive_timestamp = entry["first_receive_timestamp"]
            message.group_id, message.deduplication_id = entry["group_id"], entry["deduplication_id"]
            queue.add_message(message)
            self._stored[message.id] = (entry["queue"], message.approximate_receive_count)
            restored += 1
        return restored

    def restore(self) -> int:
        """Load the stored messages into moto (whose queues exist by now): how many."""
        return self._restore_messages()
