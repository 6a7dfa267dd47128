from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from pixcrawler.schemas.common import ResponseModel


class ImageResponse(ResponseModel):
    id: int
    crawl_job_id: int
    original_url: str
    filename: str
    width: int | None
    height: int | None
    file_size: int | None
    format: str | None
    sha256: str
    keyword: str | None
    provider: str | None
    source_url: str | None
    title: str | None
    license: str | None
    license_url: str | None
    creator: str | None
    is_valid: bool | None
    validation_errors: list[Any] | None
    created_at: datetime
    thumbnail_url: str | None = Field(
        description="A presigned GET of the 256 px preview (JPEG, or WebP for pictures with transparency), valid "
        "for 15 minutes; null when the image has none (ingested before previews existed, or its pixels did not "
        "decode)"
    )


class ImageDetailResponse(ImageResponse):
    view_url: str
