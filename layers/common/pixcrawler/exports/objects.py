"""The objects an export writes: one for an archive or a document, a tar shard after another (and a classes
file) for WebDataset.

All of an export's objects sit beside each other under its own unguessable prefix (`exports/<project>/<id>-<random>/`),
which is what makes the export's objects easy to clean: completing it removes what dead invocations left there
(an upload started before a lost commit, a stale tail), failing or cancelling it removes everything there.

One object is open at a time (the checkpoint's `key` and `upload`); the finished ones are listed in the
checkpoint's `files` with their multipart uploads, and joined only when the whole export completes, so a
redelivered message that repeats the work since the last checkpoint re-uploads parts into the same uploads
instead of making a second copy of an object.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Collection
from contextlib import suppress

from botocore.exceptions import ClientError

from pixcrawler import aws, bucket
from pixcrawler.exports import multipart
from pixcrawler.exports.checkpoint import Checkpoint, StoredFile
from pixcrawler.exports.multipart import MultipartWriter
from pixcrawler.settings import get_settings


def prefix(checkpoint: Checkpoint) -> str:
    """The export's own folder in the bucket, holding nothing but its objects."""
    return posixpath.dirname(checkpoint.key) + "/"


class Objects:
    """The export's objects as the stream writes them; `writer` is the open one (None once finished)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint
        self._s3, self._bucket = aws.s3(), get_settings().data_bucket
        self.writer: MultipartWriter | None = MultipartWriter(self._s3, self._bucket, checkpoint.key, checkpoint.upload)

    @property
    def finished(self) -> list[StoredFile]:
        """The objects finished so far, in order."""
        return self._checkpoint.files

    @property
    def name(self) -> str:
        """The open object's file name."""
        return posixpath.basename(self._checkpoint.key)

    def start(self, name: str, content_type: str) -> MultipartWriter:
        """Open the object `name` beside the others. The open one is finished first, or dropped if nothing was
        written to it (the first shard the plan opened, when its split turned out to hold no image)."""
        if self.writer is not None and self.writer.tell() == 0:
            self.writer.close()
            self.writer = None
            with suppress(ClientError):
                multipart.abort(self._s3, self._bucket, self._checkpoint.key, self._checkpoint.upload.upload_id)
        self.finish()
        key = posixpath.join(prefix(self._checkpoint), name)
        upload = multipart.start(self._s3, self._bucket, key, self._checkpoint.upload.base_part_size, content_type)
        self._checkpoint.key, self._checkpoint.upload = key, upload
        self.writer = MultipartWriter(self._s3, self._bucket, key, upload)
        return self.writer

    def finish(self) -> None:
        """Upload the open object's last part and list it among the finished ones; nothing when none is open."""
        if self.writer is None:
            return
        upload = self.writer.finish()
        self.writer.close()
        self.writer = None
        self._checkpoint.files.append(
            StoredFile(name=self.name, key=self._checkpoint.key, size=upload.size, sha256=upload.sha256, upload=upload)
        )

    def put(self, name: str, data: bytes, content_type: str) -> None:
        """A small file stored whole beside the others and listed after them."""
        self._checkpoint.files.append(put(self._checkpoint, name, data, content_type))

    def suspend(self, tail_key: str) -> None:
        """Store the open object's unfinished part as `tail_key` for the next invocation."""
        assert self.writer is not None, "an export suspends between images, while an object is open"
        self._checkpoint.upload = self.writer.suspend(tail_key)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def put(checkpoint: Checkpoint, name: str, data: bytes, content_type: str) -> StoredFile:
    """A small file stored whole beside the export's objects (repeating it rewrites the same object)."""
    key = posixpath.join(prefix(checkpoint), name)
    aws.s3().put_object(Bucket=get_settings().data_bucket, Key=key, Body=data, ContentType=content_type)
    return StoredFile(name=name, key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def finished(checkpoint: Checkpoint) -> list[StoredFile]:
    """The export's objects once streamed; a checkpoint written before exports had several objects lists
    none, its one object being `key` and `upload`."""
    if checkpoint.files:
        return checkpoint.files
    upload = checkpoint.upload
    return [
        StoredFile(
            name=posixpath.basename(checkpoint.key),
            key=checkpoint.key,
            size=upload.size,
            sha256=upload.sha256,
            upload=upload,
        )
    ]


def assemble(checkpoint: Checkpoint) -> list[StoredFile]:
    """Join every object's parts (repeatable), then remove whatever else lies under the export's prefix."""
    files = finished(checkpoint)
    s3, data_bucket = aws.s3(), get_settings().data_bucket
    for file in files:
        if file.upload is not None:
            multipart.assemble(s3, data_bucket, file.key, file.upload)
    sweep(checkpoint, keep={file.key for file in files})
    return files


def sweep(checkpoint: Checkpoint, keep: Collection[str] = ()) -> None:
    """Abort every unfinished upload under the export's prefix and delete every object there but `keep`."""
    folder = prefix(checkpoint)
    bucket.abort_uploads(folder)
    bucket.delete(key for key in bucket.keys_under(folder) if key not in keep)
