from __future__ import annotations

from datetime import datetime

from pixcrawler.models import ProjectStatus
from pixcrawler.schemas.common import Description, Name, RequestModel, ResponseModel
from pixcrawler.schemas.crawl import CrawlJobResponse


class ProjectCreate(RequestModel):
    name: Name
    description: Description | None = None


class ProjectUpdate(RequestModel):
    name: Name | None = None
    description: Description | None = None
    status: ProjectStatus | None = None


class ProjectResponse(ResponseModel):
    id: int
    name: str
    description: str | None
    status: ProjectStatus
    created_at: datetime
    updated_at: datetime


class ProjectDetailResponse(ProjectResponse):
    crawl_jobs: list[CrawlJobResponse]
