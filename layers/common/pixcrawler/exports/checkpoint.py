"""What an export invocation carries: the job's fixed facts, its checkpoint, its time budget, how it stops, and
what it wrote for each image.

These are the types the state, selection, stream and worker modules pass each other; they hold no behaviour that
touches the database or S3, so any of those modules can import them without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from pixcrawler.exports.multipart import UploadState
from pixcrawler.models import ExportItem, Image
from pixcrawler.schemas.export import ExportFormat, ExportOptions

LEASE_MARGIN = timedelta(seconds=60)


class ExportError(Exception):
    """A failure whose message is fit to show the user as the job's `error_message`."""


class LeaseLost(Exception):
    """Another invocation owns the job now: stop without touching it."""


class Cancelled(LeaseLost):
    """The job was cancelled while it ran: drop the upload, leave the row as the canceller set it."""


class StoredFile(BaseModel):
    """A finished object of the export: its multipart upload (joined when the export completes) or, for a small
    file put whole, none."""

    name: str
    key: str
    size: int
    sha256: str | None
    upload: UploadState | None = None


class Checkpoint(BaseModel):
    """Everything an invocation needs to continue the export where the previous one stopped.

    `key` and `upload` are the object being written; `files` the objects finished before it. `passes`, when
    set, are the splits streamed one after the other (`pass_index` the current one, `position` the last image
    id written in it); unset, the images stream once in id order."""

    key: str
    only_valid: bool
    last_image_id: int
    total: int
    labels: dict[str, str]
    upload: UploadState
    split_moves: dict[str, str] = {}
    position: int = 0
    exported: int = 0
    output: dict[str, Any] | None = None
    phase: Literal["images", "assembling"] = "images"
    files: list[StoredFile] = Field(default_factory=list)
    passes: list[str] | None = None
    pass_index: int = 0
    sequence: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """The export's fixed facts, read once under the lease."""

    id: int
    crawl_job_id: int
    user_id: Any
    name: str
    format: ExportFormat
    options: ExportOptions
    created_at: datetime
    """When the export was asked for: the date its files carry (`datePublished`, the extra files' times), the
    same in every invocation, so a resumed export writes the same bytes."""


@dataclass(frozen=True, slots=True)
class Clock:
    """The invocation's time budget: `owner` names the lease, `remaining_ms` is the Lambda context's."""

    owner: str
    remaining_ms: Callable[[], int]
    reserve_ms: int

    def low(self) -> bool:
        return self.remaining_ms() < self.reserve_ms

    def lease_until(self) -> datetime:
        return datetime.now(UTC) + timedelta(milliseconds=self.remaining_ms()) + LEASE_MARGIN


@dataclass(frozen=True, slots=True)
class Written:
    """One output file: pixel size, format (`jpeg`, `png`, `webp`, or the stored format when untransformed),
    byte size and SHA-256 of the bytes in the export. Width and height are unknown (None) only for an
    untransformed image whose row lacks them."""

    image_id: int
    width: int | None
    height: int | None
    format: str | None
    file_size: int | None
    sha256: str

    @classmethod
    def original(cls, image: Image) -> Written:
        """The stored image, exported as it is."""
        return cls(image.id, image.width, image.height, image.format, image.file_size, image.sha256)

    @classmethod
    def of(cls, item: ExportItem) -> Written:
        return cls(item.image_id, item.width, item.height, item.format, item.file_size, item.sha256)
