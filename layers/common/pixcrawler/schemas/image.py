from __future__ import annotations

from datetime import datetime
from typing import Any

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


class ImageDetailResponse(ImageResponse):
    view_url: str
