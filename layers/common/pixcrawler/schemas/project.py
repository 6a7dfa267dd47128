from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

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

    @field_validator("name", "status")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Omit a field to keep it; an explicit null cannot clear a required column."""
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class ProjectResponse(ResponseModel):
    id: int
    name: str
    description: str | None
    status: ProjectStatus
    created_at: datetime
    updated_at: datetime


class ProjectDetailResponse(ProjectResponse):
    crawl_jobs: list[CrawlJobResponse] = Field(
        description="The project's 20 newest crawl jobs, newest first; page through all of them with "
        "`GET /v1/projects/{id}/crawl-jobs`."
    )
    crawl_job_count: int = Field(description="How many crawl jobs the project has.")
