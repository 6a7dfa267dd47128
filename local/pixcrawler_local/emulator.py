"""S3 and SQS on one machine: moto's server, the bucket and queues the functions expect, and a disk copy of
the bucket so stored objects outlive the process (moto keeps them in memory only)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

from pixcrawler_local.ports import check_port

log = logging.getLogger(f"local-stack.{__name__.rpartition('.')[2]}")


@dataclass(frozen=True)
class WorkQueue:
    """A work queue and the event source that feeds its function, as template.yaml declares them."""

    name: str
    variable: str  # the environment variable the functions read its URL from
    function: str
    batch_size: int
    timeout_seconds: float  # the function's Timeout


WORK_QUEUES = (
    WorkQueue("dispatch", "DISPATCH_QUEUE_URL", "dispatch", batch_size=10, timeout_seconds=60),
    WorkQueue("crawl", "CRAWL_QUEUE_URL", "crawl", batch_size=1, timeout_seconds=300),
    WorkQueue("validation", "VALIDATION_QUEUE_URL", "validate", batch_size=1, timeout_seconds=300),
    WorkQueue("export", "EXPORT_QUEUE_URL", "export", batch_size=1, timeout_seconds=900),
)


@contextmanager
def moto_server(host: str, port: int) -> Iterator[str]:
    """moto's threaded server; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    check_port(host, port, "S3/SQS emulator", "--aws-port")
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.stop()


def create_queues(
    sqs: SQSClient, prefix: str, visibility_timeout: int, max_receive_count: int
) -> dict[str, dict[str, str]]:
    """Each work queue with its dead-letter queue and redrive policy, as the deployed template declares them."""
    created: dict[str, dict[str, str]] = {}
    for name in (queue.name for queue in WORK_QUEUES):
        dlq_url = sqs.create_queue(QueueName=f"{prefix}-{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        url = sqs.create_queue(
            QueueName=f"{prefix}-{name}",
            Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": redrive},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[name] = {"url": url, "arn": arn, "dlq_url": dlq_url}
    return created


class BucketMirror:
    """A copy of one bucket's objects on disk, restored into moto at start and refreshed while running.

    Files are named by the sha256 of their key (keys may hold any character); `index.json` maps keys to
    files with their ETag, content type and metadata. A refresh fetches only objects whose ETag changed.
    """

    def __init__(self, s3: S3Client, bucket: str, root: Path) -> None:
        self._s3, self._bucket, self._root = s3, bucket, root
        self._index_path = root / "index.json"
        self._lock = threading.Lock()
        self._index: dict[str, dict[str, Any]] = {}
        if self._index_path.is_file():
            self._index = json.loads(self._index_path.read_text())

    def _file(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self._root / "objects" / digest[:2] / digest

    def restore(self) -> int:
        """Put every saved object back into the (empty) bucket; the number restored."""
        with self._lock:
            for key, entry in list(self._index.items()):
                path = self._file(key)
                if not path.is_file():
                    del self._index[key]
                    continue
                with path.open("rb") as body:
                    response = self._s3.put_object(
                        Bucket=self._bucket,
                        Key=key,
                        Body=body,
                        ContentType=entry.get("content_type") or "binary/octet-stream",
                        Metadata=entry.get("metadata") or {},
                    )
                entry["etag"] = response["ETag"]
            self._save()
            return len(self._index)

    def sync(self) -> int:
        """Bring the disk copy in line with the bucket; the number of objects fetched."""
        with self._lock:
            listed: dict[str, str] = {}
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket):
                for item in page.get("Contents", []):
                    listed[item["Key"]] = item["ETag"]
            fetched = 0
            for key, etag in listed.items():
                if self._index.get(key, {}).get("etag") != etag and self._fetch(key):
                    fetched += 1
            for key in set(self._index) - set(listed):
                self._file(key).unlink(missing_ok=True)
                del self._index[key]
            self._save()
            return fetched

    def _fetch(self, key: str) -> bool:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return False  # deleted since the listing
        path = self._file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        with partial.open("wb") as out:
            shutil.copyfileobj(response["Body"], out, 1 << 20)
        os.replace(partial, path)
        self._index[key] = {
            "etag": response["ETag"],
            "content_type": response.get("ContentType"),
            "metadata": response.get("Metadata", {}),
        }
        return True

    def _save(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        partial = self._index_path.with_suffix(".part")
        partial.write_text(json.dumps(self._index))
        os.replace(partial, self._index_path)


class QueueSnapshot:
    """Messages waiting in the work queues and their dead-letter queues, saved at shutdown and sent again at
    start, since moto keeps them in memory only. A restarted stack picks its queued work up where it was;
    receive counts start again from zero."""

    def __init__(self, sqs: SQSClient, queues: dict[str, dict[str, str]], path: Path) -> None:
        self._sqs, self._queues, self._path = sqs, queues, path

    def _drain(self, url: str) -> list[str]:
        bodies: list[str] = []
        while batch := self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [message["Body"] for message in batch]
            self._sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
            )
        return bodies

    def save(self) -> int:
        """Main queues first: a message redriven while they drain lands in its DLQ, drained after."""
        saved = {name: {"queue": self._drain(urls["url"])} for name, urls in self._queues.items()}
        for name, urls in self._queues.items():
            saved[name]["dlq"] = self._drain(urls["dlq_url"])
        partial = self._path.with_suffix(".part")
        partial.write_text(json.dumps(saved))
        os.replace(partial, self._path)
        return sum(len(bodies) for queues in saved.values() for bodies in queues.values())

    def restore(self) -> int:
        if not self._path.is_file():
            return 0
        saved: dict[str, dict[str, list[str]]] = json.loads(self._path.read_text())
        restored = 0
        for name, queues in saved.items():
            for kind, url_key in (("queue", "url"), ("dlq", "dlq_url")):
                bodies = queues.get(kind, [])
                for start in range(0, len(bodies), 10):
                    entries: list[SendMessageBatchRequestEntryTypeDef] = [
                        {"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])
                    ]
                    self._sqs.send_message_batch(QueueUrl=self._queues[name][url_key], Entries=entries)
                restored += len(bodies)
        self._path.unlink()
        return restored
