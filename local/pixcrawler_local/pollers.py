"""The local SQS event source mapping: what Lambda's poller does between a queue and a worker function.

Per queue, `concurrency` threads each long-poll up to `batch_size` messages, invoke the function with the
same `{"Records": [...]}` event Lambda builds, and delete only the messages that succeeded: everything
when the function reports no `batchItemFailures`, nothing when it raises, returns a malformed response or
names a message that was not in the batch (Lambda's rules for `ReportBatchItemFailures`). Failed messages
become visible again when the queue's visibility timeout ends, and SQS itself moves a message to the
dead-letter queue once its receive count passes the queue's `RedrivePolicy` maxReceiveCount.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageAttributeValueOutputTypeDef,
        MessageTypeDef,
    )

Invoke = Callable[[dict[str, Any]], Any]
log = logging.getLogger(f"local-stack.{__name__.rpartition('.')[2]}")


def _attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value["DataType"],
    }


def to_record(message: MessageTypeDef, queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as a Lambda event record."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {name: _attribute(value) for name, value in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def succeeded(batch_ids: list[str], result: Any) -> list[str]:
    """The message ids to delete after an invocation that returned `result`."""
    if result is None:
        return batch_ids
    if not isinstance(result, dict):
        return []
    failures = result.get("batchItemFailures")
    if failures is None or failures == []:
        return batch_ids
    if not isinstance(failures, list):
        return []
    failed = {failure.get("itemIdentifier") if isinstance(failure, dict) else None for failure in failures}
    if not failed <= set(batch_ids):
        return []  # an empty, null or unknown identifier fails the whole batch
    return [message_id for message_id in batch_ids if message_id not in failed]


@dataclass
class EventSource:
    queue_url: str
    queue_arn: str
    invoke: Invoke
    batch_size: int = 10
    concurrency: int = 1
    wait_seconds: int = 1
    region: str = "us-east-1"


class Poller:
    """Threads that feed one function from one queue until `stop()`; a batch in progress always finishes."""

    def __init__(self, sqs: SQSClient, source: EventSource, name: str) -> None:
        self._sqs, self._source, self.name = sqs, source, name
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"poller-{name}-{n}", daemon=True)
            for n in range(source.concurrency)
        ]
        self.invocations = 0
        self._failed: dict[str, str] = {}  # message id -> receipt handle, while it waits out its timeout
        self._busy: set[threading.Thread] = set()  # threads running a batch
        self._lock = threading.Lock()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        with self._lock:
            self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the batches in progress. A thread waiting in an empty long poll is not waited for (up to a
        second, which was most of the stack's shutdown): a batch it receives now goes back at once, and if the
        emulator ends first, the messages are still stored and the next start delivers them."""
        with self._lock:
            busy = list(self._busy)
        for thread in busy:
            thread.join(timeout)

    def release_failed(self) -> None:
        """Make the messages that failed here visible again now (at shutdown): the next start delivers them at once."""
        with self._lock:
            handles, self._failed = list(self._failed.values()), {}
        self._release(handles)

    def _release(self, handles: list[str]) -> None:
        for handle in handles:
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._source.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )
            except Exception:
                log.debug("a failed message was already received again or moved", exc_info=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stopping.is_set():  # the emulator ended while this thread waited in a long poll
                    log.debug("poller %s: its last receive ended with the stack", self.name, exc_info=True)
                    return
                log.exception("poller %s: receiving from SQS failed", self.name)
                self._stopping.wait(1.0)

    def poll_once(self) -> int:
        """Receive one batch and process it; the number of messages received."""
        source = self._source
        messages = self._sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=source.batch_size,
            WaitTimeSeconds=source.wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        with self._lock:
            stopping = self._stopping.is_set()
            if not stopping:
                self._busy.add(threading.current_thread())
        if stopping:
            self._release([message["ReceiptHandle"] for message in messages])
            return 0
        try:
            return self._process(messages)
        finally:
            with self._lock:
                self._busy.discard(threading.current_thread())

    def _process(self, messages: list[MessageTypeDef]) -> int:
        source = self._source
        event = {"Records": [to_record(m, source.queue_arn, source.region) for m in messages]}
        ids = [m["MessageId"] for m in messages]
        self.invocations += 1
        started = time.perf_counter()
        try:
            result = source.invoke(event)
        except Exception:
            log.exception("%s raised on a batch of %d; it returns after the visibility timeout", self.name, len(ids))
            result = {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in ids]}
        done = set(succeeded(ids, result))
        with self._lock:
            for message in messages:
                if message["MessageId"] in done:
                    self._failed.pop(message["MessageId"], None)
                else:
                    self._failed[message["MessageId"]] = message["ReceiptHandle"]
        log.info(
            "%s: batch of %d in %.0f ms, %d failed",
            self.name,
            len(ids),
            (time.perf_counter() - started) * 1000,
            len(ids) - len(done),
        )
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
            for n, m in enumerate(messages)
            if m["MessageId"] in done
        ]
        for start in range(0, len(entries), 10):
            self._sqs.delete_message_batch(QueueUrl=source.queue_url, Entries=entries[start : start + 10])
        return len(messages)
