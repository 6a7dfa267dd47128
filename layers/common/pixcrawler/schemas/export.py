from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, model_validator

from pixcrawler.models import JobStatus
from pixcrawler.schemas.common import Name, RequestModel, ResponseModel

MAX_LINK_LIFETIME_HOURS = 7 * 24


class ExportFormat(enum.StrEnum):
    ZIP = "zip"
    TAR = "tar"
    TAR_GZ = "tar.gz"
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"


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


class ExportJobCreate(RequestModel):
    name: Name
    format: ExportFormat = ExportFormat.ZIP
    options: ExportOptions = Field(default_factory=ExportOptions)


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

    @model_validator(mode="after")
    def _hide_dead_link(self) -> ExportJobResponse:
        """A link past its `expires_at` only fails for the user: report it as expired instead of handing it out."""
        if self.download_url and self.expires_at and self.expires_at <= datetime.now(UTC):
            self.download_url, self.link_expired = None, True
        return self
