from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from pixcrawler.models import Role
from pixcrawler.schemas.common import HttpUrl, RequestModel, ResponseModel


class ProfileResponse(ResponseModel):
    id: uuid.UUID
    email: str
    full_name: str | None
    avatar_url: str | None
    role: Role
    created_at: datetime
    updated_at: datetime


class ProfileUpdate(RequestModel):
    full_name: str | None = Field(default=None, max_length=200)
    avatar_url: HttpUrl | None = None
