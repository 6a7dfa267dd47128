from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from pixcrawler.models import JobStatus
from pixcrawler.schemas.common import Name, RequestModel, ResponseModel

MAX_DIMENSION = 20_000


class DuplicatePolicy(enum.StrEnum):
    KEEP_ONE = "keep_one"
    ALLOW = "allow"


class ImageFormat(enum.StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    WEBP = "webp"
    BMP = "bmp"
    TIFF = "tiff"


class ValidationRules(RequestModel):
    """Every rule has a default, so `{}` is a sensible job: decodable images, duplicates removed."""

    decodable: bool = Field(default=True, description="Refuse images whose pixels do not decode")
    min_width: int = Field(default=1, ge=1, le=MAX_DIMENSION, description="Pixels")
    min_height: int = Field(default=1, ge=1, le=MAX_DIMENSION, description="Pixels")
    max_width: int | None = Field(default=None, ge=1, le=100_000, description="Pixels")
    max_height: int | None = Field(default=None, ge=1, le=100_000, description="Pixels")
    min_aspect_ratio: float | None = Field(default=None, gt=0, le=100, description="Width divided by height")
    max_aspect_ratio: float | None = Field(default=None, gt=0, le=100, description="Width divided by height")
    max_file_size: int | None = Field(default=None, ge=1, description="Bytes")
    allowed_formats: list[ImageFormat] | None = Field(
        default=None, min_length=1, description="Formats to keep; null: any"
    )
    exact_duplicates: DuplicatePolicy = Field(
        default=DuplicatePolicy.KEEP_ONE, description="Identical bytes: keep the largest, earliest one, or allow all"
    )
    near_duplicates: DuplicatePolicy = Field(
        default=DuplicatePolicy.KEEP_ONE, description="Resized or re-encoded copies: keep one, or allow all"
    )
    near_duplicate_threshold: int = Field(default=4, ge=0, le=32, description="Max Hamming distance, 64-bit hash")
    reject_blank: bool = Field(default=False, description="Refuse near-uniform pictures (blank, single colour)")
    blank_variance_threshold: float = Field(
        default=25.0, ge=0, le=10_000, description="Pixel variance below which a picture counts as blank"
    )

    @model_validator(mode="after")
    def _bounds_ordered(self) -> ValidationRules:
        pairs = (
            ("min_width", "max_width"),
            ("min_height", "max_height"),
            ("min_aspect_ratio", "max_aspect_ratio"),
        )
        for low, high in pairs:
            low_value, high_value = getattr(self, low), getattr(self, high)
            if low_value is not None and high_value is not None and low_value > high_value:
                raise ValueError(f"{low} must not exceed {high}")
        return self


class ValidationJobCreate(RequestModel):
    name: Name
    rules: ValidationRules = Field(default_factory=ValidationRules)


class ValidationJobResponse(ResponseModel):
    id: int
    crawl_job_id: int
    name: str
    status: JobStatus
    progress: int
    total_images: int
    validated_images: int
    invalid_images: int
    validation_rules: dict[str, Any]
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
