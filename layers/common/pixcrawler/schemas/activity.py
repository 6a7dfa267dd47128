from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from pixcrawler.schemas.common import ResponseModel


class ActivityLogResponse(ResponseModel):
    id: int
    action: str
    resource_type: str | None
    resource_id: str | None
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    timestamp: datetime
