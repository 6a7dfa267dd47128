from __future__ import annotations

import enum
import math
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from pixcrawler.models import JobStatus
from pixcrawler.schemas.common import Name, RequestModel, ResponseModel

MAX_LINK_LIFETIME_HOURS = 7 * 24
DEFAULT_SHARD_MAX_BYTES = 1024**3
MIN_SHARD_MAX_BYTES = 64 * 1024
MAX_SHARD_MAX_BYTES = 5 * 1024**4
MAX_SPLITS = 10
SPLIT_SUM_TOLERANCE = 1e-6
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,63}")


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
    splits: dict[str, float] | None = Field(
        default=None,
        description='Split name -> fraction of the images, e.g. {"train": 0.8, "validation": 0.1, "test": 0.1}: '
        "1 to 10 names (letters, digits, `_`; distinct ignoring case), fractions above 0 summing to 1",
    )
    split_seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Another seed gives another split")

    _SHOWN_ONLY_WHEN_SET: ClassVar[frozenset[str]] = frozenset(
        {"image_size", "resize_mode", "resize_only_if_bigger", "encode_format", "encode_quality"}
        | {"splits", "split_seed", "shard_max_samples", "shard_max_bytes"}
    )

    @model_serializer(mode="wrap")
    def _omit_unset_additions(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Options added since exports first shipped are stored (and shown in `export_options`) only when they
        differ from their default, so an export that does not use them keeps exactly the options it had."""
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        return {
            key: value
            for key, value in data.items()
            if key not in self._SHOWN_ONLY_WHEN_SET or value != fields[key].default
        }

    @field_validator("splits")
    @classmethod
    def _check_splits(cls, splits: dict[str, float] | None) -> dict[str, float] | None:
        """Split names become folder and shard names (`train/`, `train-000000.tar`) and Hugging Face split
        names: ASCII letters, digits and `_`, never a Windows device name, distinct on case-insensitive disks."""
        from pixcrawler.exports.layout import safe_segment

        if splits is None:
            return None
        if not 1 <= len(splits) <= MAX_SPLITS:
            raise ValueError(f"give 1 to {MAX_SPLITS} splits, not {len(splits)}")
        seen: dict[str, str] = {}
        for name, fraction in splits.items():
            if not _SPLIT_NAME.fullmatch(name) or safe_segment(name, "") != name:
                raise ValueError(
                    f"split name {name!r} must be 1 to 64 ASCII letters, digits or `_`, start with a letter or "
                    "digit, and not be a Windows device name"
                )
            if name.casefold() in seen:
                raise ValueError(f"split names {seen[name.casefold()]!r} and {name!r} differ only in letter case")
            seen[name.casefold()] = name
            if not (math.isfinite(fraction) and 0 < fraction <= 1):
                raise ValueError(f"split {name!r} has fraction {fraction}; each fraction must be above 0 and at most 1")
        total = math.fsum(splits.values())
        if abs(total - 1) > SPLIT_SUM_TOLERANCE:
            raise ValueError(f"split fractions sum to {total:g}; they must sum to 1")
        return splits

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
    split_counts: dict[str, dict[str, int]] | None = Field(
        default=None, description="With `splits`: images per split and label, known once the export has started"
    )
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
