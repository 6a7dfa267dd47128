"""A write-only, non-seekable file object that streams into an S3 multipart upload.

boto3's `upload_fileobj` pulls from a readable source; archive writers (zipfile, tarfile, gzip) push into a
writable one. This writer sits between them: it buffers bytes until the next part is full and hands it to its
uploading thread, which stores it (through the CRT: `transfers.upload_part`) and hashes it while the next part
fills (the stream waits only when a part is full before the one before it is stored), so memory stays around
three parts (the filling buffer, the part being uploaded, the client's buffers for it) whatever the archive size.

Suspending (for a long export that continues in the next Lambda invocation) cannot upload the unfinished
buffer as a part (S3 refuses parts under 5 MiB except the last), so it is stored as a small "tail" object and
read back on resume: the byte stream continues exactly where it stopped.

Each part is hashed as it is uploaded (parts go up in order, so the parts' bytes in order are the object's), and
the running SHA-256 state is kept in the upload's state beside the parts it covers: the object's sha256 is known
when the last part is uploaded, however many invocations wrote it, without reading anything back.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, cast

from pydantic import BaseModel, Field

from pixcrawler import transfers
from pixcrawler.exports.digest import ResumableSha256

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
EVEN_PARTS = 5_000
PARTS_PER_STEP = 1_000


def part_size(part_number: int, base: int) -> int:
    """The size of part `part_number` (1-based): `base` for the first 5,000 parts, then doubled every 1,000,
    capped at S3's 5 GiB: 67,000 bases in 10,000 parts, 13 times what `base_part_size` sized the first 5,000
    for (5 times at S3's 5 TiB, where the cap binds). The writer holds three parts, so its memory stays at
    three bases through an export of the expected size; until 2026-12-07 parts doubled from the 1,001st, and
    a 50,000-photo export (5.8 GB, 5 MiB parts) ended 15 MiB higher than it began."""
    steps = 0 if part_number <= EVEN_PARTS else (part_number - EVEN_PARTS - 1) // PARTS_PER_STEP + 1
    return min(max(base, MIN_PART_SIZE) << steps, MAX_PART_SIZE)


def base_part_size(configured: int, expected: int) -> int:
    """The first parts' size: `configured`, or more (in whole MiB) where 5,000 parts of it would not hold the
    `expected` bytes (the sum of the exported images' stored sizes: an archive adds headers and manifests, a
    transform may enlarge them, and the doubling parts after the 5,000th hold 12 times as much again)."""
    needed = -(-expected // EVEN_PARTS // MiB) * MiB
    return min(max(configured, needed, MIN_PART_SIZE), MAX_PART_SIZE)


class UploadState(BaseModel):
    """What a suspended upload needs to continue; stored in `export_jobs.checkpoint`."""

    upload_id: str
    base_part_size: int
    parts: list[dict[str, Any]] = Field(default_factory=list)
    size: int = 0
    tail_key: str | None = None
    hash_state: str | None = Field(default=None, description="SHA-256 state over the uploaded parts")
    sha256: str | None = Field(default=None, description="The object's sha256, once the last part is uploaded")


class MultipartWriter(io.RawIOBase):
    """Append-only stream into one multipart upload; `tell()` is the absolute offset in the final object.

    At most one part is in flight: `state` lists the parts stored, in order, once `finish` or `suspend` has
    waited for it, and an upload's error is raised by the next write that fills a part, or by either."""

    def __init__(self, s3: S3Client, bucket: str, key: str, state: UploadState) -> None:
        super().__init__()
        self._uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-part")
        self._in_flight: Future[None] | None = None
        self._s3, self._bucket, self._key = s3, bucket, key
        self.state = state
        self._buffer = bytearray()
        # a checkpoint written before parts were hashed cannot know its object's digest: leave it unknown
        self._hash = None if state.parts and state.hash_state is None else ResumableSha256(state.hash_state)
        self._sent = len(state.parts)
        if state.tail_key:
            self._buffer += s3.get_object(Bucket=bucket, Key=state.tail_key)["Body"].read()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.state.size

    def write(self, data: ReadableBuffer) -> int:
        if self.closed:
            raise ValueError("the export stream was suspended or finished; nothing more may be written")
        view = memoryview(data).cast("B")
        self._buffer += view
        self.state.size += len(view)
        while len(self._buffer) >= (size := part_size(self._sent + 1, self.state.base_part_size)):
            self._send(size)
        return len(view)

    def _send(self, size: int) -> None:
        """Start uploading the buffer's first `size` bytes as the next part, once the part before it is stored:
        waiting before the copy keeps the part in flight, its successor's copy and the buffer from being three."""
        if self._sent + 1 > MAX_PARTS:
            raise OverflowError("the export exceeds S3's 10,000-part limit")
        self._settle()
        with memoryview(self._buffer) as whole:
            body = bytes(whole[:size])  # one copy; slicing the bytearray first would make two
        del self._buffer[:size]
        self._sent += 1
        self._in_flight = self._uploader.submit(self._upload, body, self._sent)

    def _settle(self) -> None:
        """Wait for the part in flight; raise its upload's error."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def _upload(self, body: bytes, number: int) -> None:
        etag = transfers.upload_part(self._bucket, self._key, self.state.upload_id, number, body)
        self.state.parts.append({"PartNumber": number, "ETag": etag})
        if self._hash is not None:
            self._hash.update(body)
            self.state.hash_state = self._hash.state()

    def suspend(self, tail_key: str) -> UploadState:
        """Store the unfinished part as `tail_key` and return the state to resume from."""
        self._settle()
        self._s3.put_object(Bucket=self._bucket, Key=tail_key, Body=bytes(self._buffer))
        self.state.tail_key = tail_key
        return self.state

    def put_beside(self, suffix: str, body: IO[bytes]) -> None:
        """Store `body` (from its current position) as the object `<key><suffix>`, next to the upload."""
        self._s3.put_object(Bucket=self._bucket, Key=self._key + suffix, Body=body)

    def read_beside(self, suffix: str) -> Iterator[bytes]:
        """The object `<key><suffix>` stored by `put_beside`, a MiB at a time."""
        body = self._s3.get_object(Bucket=self._bucket, Key=self._key + suffix)["Body"]
        yield from body.iter_chunks(MiB)

    def finish(self) -> UploadState:
        """Upload the last part (the only one allowed under 5 MiB); the state then lists every part."""
        if self._buffer or not self._sent:
            self._send(len(self._buffer))
        self._settle()
        self.state.tail_key = None
        self.state.sha256 = self._hash.hexdigest() if self._hash is not None else None
        return self.state

    def close(self) -> None:
        """Let the part in flight end (its error, if any, is for `finish` or `suspend` to raise: a writer closed
        without either is being abandoned) and stop the uploading thread."""
        if not self.closed:
            self._uploader.shutdown(wait=True)
        super().close()


def assemble(s3: S3Client, bucket: str, key: str, state: UploadState) -> None:
    """Join the parts into the object. Safe to repeat: an upload already assembled into an object of the
    expected size counts as done, so a redelivered message after a lost database commit finishes cleanly."""
    from botocore.exceptions import ClientError

    try:
        parts = cast("list[CompletedPartTypeDef]", state.parts)
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=state.upload_id, MultipartUpload={"Parts": parts})
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
            raise
        try:
            size = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except ClientError:
            raise error from None
        if size != state.size:
            raise


def start(s3: S3Client, bucket: str, key: str, base_part_size: int, content_type: str) -> UploadState:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
    return UploadState(upload_id=upload_id, base_part_size=base_part_size)


def abort(s3: S3Client, bucket: str, key: str, upload_id: str) -> None:
    """Drop an unfinished upload and its stored parts (S3 bills them until aborted)."""
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
