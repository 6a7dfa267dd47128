from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

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


DOCUMENT_FORMATS = frozenset({ExportFormat.CSV, ExportFormat.JSON, ExportFormat.JSONL})
"""Formats that link the stored originals instead of holding image bytes: nothing to transform."""


class ResizeMode(enum.StrEnum):
    """img2dataset's resize modes, with its meaning (see README "Exports and download links")."""

    NO = "no"
    KEEP_RATIO = "keep_ratio"
    KEEP_RATIO_LARGEST = "keep_ratio_largest"
    CENTER_CROP = "center_crop"
    BORDER = "border"


class EncodeFormat(enum.StrEnum):
    ORIGINAL = "original"
    JPEG = "jpeg"
    WEBP = "webp"
    PNG = "png"


def _refuse(loc: tuple[str, ...], message: str, value: Any) -> ValidationError:
    """A bad combination of fields, located at the field to change, so the API's 422 names that field (a
    plain ValueError from a model validator would name only the model)."""
    error = PydanticCustomError("invalid_combination", message)
    return ValidationError.from_exception_data("export", [InitErrorDetails(type=error, loc=loc, input=value)])


class ExportOptions(RequestModel):
    only_valid: bool | None = Field(
        default=None, description="Default: true once a validation job has completed for the crawl job"
    )
    include_manifest: bool = True
    layout: ExportLayout = ExportLayout.FLAT
    link_lifetime_hours: int = Field(default=24, ge=1, le=MAX_LINK_LIFETIME_HOURS)
    image_size: int | None = Field(
        default=None, ge=16, le=8192, description="Target size in pixels; required when resize_mode is not 'no'"
    )
    resize_mode: ResizeMode = Field(default=ResizeMode.NO, description="As img2dataset's resize_mode")
    resize_only_if_bigger: bool = Field(default=False, description="Never enlarge an image smaller than image_size")
    encode_format: EncodeFormat = Field(
        default=EncodeFormat.ORIGINAL,
        description="'original': the stored format when it is JPEG, PNG or WebP, else PNG",
    )
    encode_quality: int = Field(default=95, ge=1, le=100, description="JPEG and WebP quality; PNG is lossless")

    @property
    def transforms(self) -> bool:
        """Whether images are decoded and re-encoded; otherwise the stored bytes are exported as they are."""
        return self.resize_mode is not ResizeMode.NO or self.encode_format is not EncodeFormat.ORIGINAL

    @model_validator(mode="after")
    def _size_matches_mode(self) -> ExportOptions:
        if self.resize_mode is not ResizeMode.NO and self.image_size is None:
            raise _refuse(("image_size",), f"required when resize_mode is '{self.resize_mode}'", None)
        if self.resize_mode is ResizeMode.NO and self.image_size is not None:
            message = "image_size needs a resize_mode: keep_ratio, keep_ratio_largest, center_crop or border"
            raise _refuse(("resize_mode",), message, self.resize_mode.value)
        return self


class ExportJobCreate(RequestModel):
    name: Name
    format: ExportFormat = ExportFormat.ZIP
    options: ExportOptions = Field(default_factory=ExportOptions)

    @model_validator(mode="after")
    def _transforms_need_image_bytes(self) -> ExportJobCreate:
        if self.format in DOCUMENT_FORMATS and self.options.transforms:
            field = "resize_mode" if self.options.resize_mode is not ResizeMode.NO else "encode_format"
            message = f"a {self.format} export links the stored originals; resize and re-encode need an archive format"
            raise _refuse(("options", field), message, getattr(self.options, field).value)
        return self


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
