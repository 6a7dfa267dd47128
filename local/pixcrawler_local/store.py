"""Write-through persistence for moto's S3 and SQS: the data dir holds every accepted object and message.

`DurableStore` is WSGI middleware around moto's app. After a request that may have changed an object or a queue
succeeds, and before its answer leaves the process, it reconciles the data dir with moto's state for what the
request named (its key or keys; its queue and that queue's dead-letter queue). Reconciling rather than
replaying requests means the disk follows whatever moto decided (an overwrite, a redrive to the DLQ, a purge).

On disk, under the data dir:
- `s3/keys/<xx>/<sha256 of bucket and key>.json`: the key, its ETag, size, metadata and the blob holding its
  bytes; `s3/blobs/<xx>/<uuid>`: the bytes. A new blob is written before the manifest that names it replaces
  the old one, so a kill at any point leaves either the old object or the new, plus at worst an orphan blob
  that the next start deletes.
- `sqs/<message id>.json`: the message's queue, body, attributes and receive count, replaced atomically on
  every change (a redrive to the DLQ is one rename), deleted with the message.

Files are written without fsync: they outlive a killed process (the page cache belongs to the kernel), not a
power cut, which is what a development stack needs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import FakeKey, s3_backends
from moto.sqs.models import Message, sqs_backends

log = logging.getLogger(f"local-stack.{__name__.rpartition('.')[2]}")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

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
# S3 sub-resources whose requests never change an object's bytes or metadata.
S3_UNCHANGED = frozenset({"partNumber", "uploads", "tagging", "acl", "retention", "legal-hold"})


class DiskBuffer:
    """What moto's FakeKey asks of its value buffer (seek, tell, read, close), over a file opened per read:
    twenty thousand stored objects must not hold twenty thousand open descriptors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._position = 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.path.stat().st_size}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        with self.path.open("rb") as stored:
            stored.seek(self._position)
            data = stored.read(size)
        self._position += len(data)
        return data

    def close(self) -> None:
        """The blob belongs to the store, which deletes it when its manifest no longer names it."""


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    partial.write_text(text)
    os.replace(partial, path)


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


class DurableStore:
    """Wraps moto's WSGI app; `restore()` once the bucket and queues exist, then serve through it."""

    def __init__(self, app: WSGIApp, root: Path, region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self._app = app
        self._keys, self._blobs, self._messages_dir = root / "s3" / "keys", root / "s3" / "blobs", root / "sqs"
        self._account_id, self._region = account_id, region
        self._key_locks = [threading.Lock() for _ in range(64)]
        self._queue_lock = threading.Lock()
        self._stored: dict[str, tuple[str, int]] = {}  # message id -> (queue name, receive count) on disk

    @property
    def _s3(self) -> Any:
        return s3_backends[self._account_id]["aws"]

    @property
    def _sqs(self) -> Any:
        return sqs_backends[self._account_id][self._region]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method not in ("PUT", "POST", "DELETE"):
            return self._app(environ, start_response)
        body = b""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if target.startswith("AmazonSQS.") or (method == "POST" and "delete" in query):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
        statuses: list[str] = []

        def recording(status: str, headers: Any, exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        response = self._app(environ, recording)
        if statuses and statuses[0].startswith("2"):
            if target.startswith("AmazonSQS."):
                if target.removeprefix("AmazonSQS.") in SQS_CHANGES:
                    self.save_queue(json.loads(body or b"{}").get("QueueUrl", "").rstrip("/").rpartition("/")[2])
            elif not S3_UNCHANGED & set(query) and (method != "POST" or "uploads" not in query):
                self._save_s3_request(environ["PATH_INFO"], query, body)
        return response

    # --- S3 -------------------------------------------------------------------------------------------------

    def _save_s3_request(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        bucket, _, key = path.encode("latin-1").decode("utf-8").lstrip("/").partition("/")  # WSGI's PATH_INFO
        if "delete" in query:
            names = ET.fromstring(body).iter() if body else iter(())
            for element in names:
                if element.tag.rpartition("}")[2] == "Key" and element.text is not None:
                    self.save_object(bucket, element.text)
        elif key:
            self.save_object(bucket, key)

    def _manifest(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(f"{bucket}\0{key}".encode()).hexdigest()
        return self._keys / digest[:2] / f"{digest}.json"

    def save_object(self, bucket: str, key: str) -> None:
        """Make the disk hold what moto holds for this key: its bytes and manifest, or nothing."""
        manifest = self._manifest(bucket, key)
        with self._key_locks[int(manifest.stem[:2], 16) % len(self._key_locks)]:
            try:
                stored = self._s3.get_bucket(bucket).keys.get(key)
            except Exception:  # the bucket is gone: so is the key
                stored = None
            previous = json.loads(manifest.read_text()) if manifest.is_file() else None
            if not isinstance(stored, FakeKey):
                manifest.unlink(missing_ok=True)
            elif isinstance(stored._value_buffer, DiskBuffer):
                return  # already on disk, unchanged (an ACL or tagging request)
            else:
                self._write_object(bucket, stored, manifest)
            if previous is not None:
                (self._blobs / previous["blob"]).unlink(missing_ok=True)

    def _write_object(self, bucket: str, stored: FakeKey, manifest: Path) -> None:
        name = uuid.uuid4().hex
        blob = self._blobs / name[:2] / name
        blob.parent.mkdir(parents=True, exist_ok=True)
        etag = stored.etag.strip('"')
        with stored.lock:
            in_memory = stored._value_buffer
            in_memory.seek(0)
            with blob.open("wb") as out:
                shutil.copyfileobj(in_memory, out, 1 << 20)
            stored._value_buffer = DiskBuffer(blob)  # type: ignore[assignment]
            in_memory.close()
        entry = {
            "bucket": bucket,
            "key": stored.name,
            "blob": f"{name[:2]}/{name}",
            "etag": etag,
            "size": stored.size,
            "last_modified": stored.last_modified.isoformat(),
            "metadata": dict(stored.metadata),
        }
        _write_atomically(manifest, json.dumps(entry))

    def _restore_objects(self) -> int:
        referenced: set[str] = set()
        for manifest in self._keys.glob("*/*.json"):
            entry = json.loads(manifest.read_text())
            blob = self._blobs / entry["blob"]
            if not blob.is_file():
                manifest.unlink()
                continue
            stored = FakeKey(
                name=entry["key"],
                value=b"",
                account_id=self._account_id,
                region_name=self._region,
                bucket_name=entry["bucket"],
                etag=entry["etag"],
            )
            stored._value_buffer.close()
            stored._value_buffer = DiskBuffer(blob)  # type: ignore[assignment]
            stored.contentsize = entry["size"]
            stored.last_modified = datetime.fromisoformat(entry["last_modified"])
            stored.set_metadata(entry["metadata"], replace=True)
            self._s3.get_bucket(entry["bucket"]).keys[entry["key"]] = stored
            referenced.add(entry["blob"])
        for blob in self._blobs.glob("*/*"):
            if f"{blob.parent.name}/{blob.name}" not in referenced:
                blob.unlink()  # written by a request the process died before acknowledging
        return len(referenced)

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
                    _write_atomically(
                        self._messages_dir / f"{message_id}.json", self._message_json(queue_name, message)
                    )
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

    def restore(self) -> tuple[int, int]:
        """Load the stored objects and messages into moto (whose bucket and queues exist by now): the counts."""
        return self._restore_objects(), self._restore_messages()
