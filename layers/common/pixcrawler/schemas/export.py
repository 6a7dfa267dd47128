from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, model_validator

from pixcrawler.models import JobStatus
from pixcrawler.schemas.common import Name, RequestModel, ResponseModel

MAX_LINK_LIFETIME_HOURS = 7 * 24
DEFAULT_SHARD_MAX_BYTES = 1024**3
MIN_SHARD_MAX_BYTES = 64 * 1024
MAX_SHARD_MAX_BYTES = 5 * 1024**4


class ExportFormat(enum.StrEnum):
    ZIP = "zip"
    TAR = "tar"
    TAR_GZ = "tar.gz"
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"
    WEBDATASET = "webdataset"


class ExportLayout(enum.StrEnum):
    FLAT = "flat"
    BY_KEYWORD = "by_keyword"
    HF_IMAGEFOLDER = "hf_imagefolder"


class ExportOptions(RequestModel):
    only_valid: bool | None = Field(
        default=None, description="Default: true once a validation job has completed for the crawl job"
    )
    include_manifest: bool = True
    layout: ExportLayout = ExportLayout.FLAT
    link_lifetime_hours: int = Field(default=24, ge=1, le=MAX_LINK_LIFETIME_HOURS)
    shard_max_samples: int = Field(
        default=10_000, ge=1, le=1_000_000, description="webdataset: samples per tar shard at most"
    )
    shard_max_bytes: int = Field(
        default=DEFAULT_SHARD_MAX_BYTES,
        ge=MIN_SHARD_MAX_BYTES,
        le=MAX_SHARD_MAX_BYTES,
        description="webdataset: bytes per tar shard at most (1 GiB by default); a single larger sample gets a "
        "shard of its own",
    )


class ExportJobCreate(RequestModel):
    name: Name
    format: ExportFormat = ExportFormat.ZIP
    options: ExportOptions = Field(default_factory=ExportOptions)


class ExportFile(ResponseModel):
    """One object of an export; single-archive and document formats have exactly one."""

    name: str
    size: int
    sha256: str | None = Field(description="Of the object's bytes, computed while it was written")
    download_url: str | None = Field(default=None, description="Through `/v1/downloads/{token}`, like the export's")


class ExportJobResponse(ResponseModel):
    id: int
    crawl_job_id: int
    name: str
    status: JobStatus
    progress: int
    format: str
    total_images: int
    exported_images: int
    file_size: int | None
    download_url: str | None
    export_options: dict[str, Any]
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    link_expired: bool = Field(default=False, description="The last link has expired; ask for a fresh one")
    files: list[ExportFile] = Field(
        default_factory=list,
        description="Every object of a completed export in order; `download_url` and `file_size` are the first's",
    )

    @model_validator(mode="after")
    def _hide_dead_link(self) -> ExportJobResponse:
        """A link past its `expires_at` only fails for the user: report it as expired instead of handing it out."""
        if self.download_url and self.expires_at and self.expires_at <= datetime.now(UTC):
            self.download_url, self.link_expired = None, True
            for file in self.files:
                file.download_url = None
        return self
