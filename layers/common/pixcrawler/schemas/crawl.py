from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, StringConstraints, computed_field, field_validator, model_validator

from pixcrawler.crawl.refusals import CODES_DOC, DEFERRAL_CODES_DOC, describe
from pixcrawler.models import JobStatus
from pixcrawler.schemas.common import HttpUrl, Name, RequestModel, ResponseModel

MAX_IMAGES_PER_JOB = 100_000
MAX_URLS_PER_JOB = 100_000

Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Provider(enum.StrEnum):
    OPENVERSE = "openverse"
    WIKIMEDIA = "wikimedia"
    URLS = "urls"


class CrawlJobCreate(RequestModel):
    # Its strings strip by their types (Name, Keyword, HttpUrl): not the model-wide way, whose cache of
    # stripped strings would keep thousands of URLs (see HttpUrl).
    model_config = ConfigDict(str_strip_whitespace=False)

    name: Name
    keywords: list[Keyword] = Field(min_length=1, max_length=50)
    max_images: int = Field(ge=1, le=MAX_IMAGES_PER_JOB)
    providers: list[Provider] = Field(default=[Provider.OPENVERSE], min_length=1, max_length=len(Provider))
    urls: list[HttpUrl] | None = Field(
        default=None, max_length=MAX_URLS_PER_JOB, description="Explicit image URLs for the `urls` provider"
    )
    respect_robots: StrictBool = Field(
        default=True,
        description="Honour each image host's robots.txt (Disallow and Crawl-delay for our user agent). Turn it "
        "off only for hosts you own: X-Robots-Tag opt-outs and the per-host rate limits still apply.",
    )

    @field_validator("keywords", "providers")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        """Trimmed duplicates would crawl the same pages twice; keep the first of each, in order."""
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _urls_match_provider(self) -> CrawlJobCreate:
        wants_urls = Provider.URLS in self.providers
        if wants_urls and not self.urls:
            raise ValueError("urls: the 'urls' provider needs a non-empty list of image URLs")
        if self.urls and not wants_urls:
            raise ValueError("urls: given without the 'urls' provider")
        return self


class CrawlJobResponse(ResponseModel):
    id: int
    project_id: int
    name: str
    keywords: list[str]
    providers: list[str]
    max_images: int
    status: JobStatus
    progress: int
    total_images: int
    downloaded_images: int
    valid_images: int
    total_chunks: int
    active_chunks: int
    completed_chunks: int
    failed_chunks: int
    refused: dict[str, int] = Field(
        description="Candidates not stored, counted by reason (codes: "
        f"{CODES_DOC}). Every candidate found is either stored, refused, or not needed once the job was full."
    )
    deferred: dict[str, int] = Field(
        default_factory=dict,
        description="Candidates put off for a later delivery because their host was busy, by reason (codes: "
        f"{DEFERRAL_CODES_DOC}); a candidate deferred twice counts twice. Deferral delays a job, never fails it.",
    )
    respect_robots: bool = True
    error_message: str | None
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def refused_summary(self) -> str:
        """`refused` in words, most frequent reason first (`1 HTTP error status, 1 not an image`), as the CLI
        prints it; empty when nothing was refused."""
        return describe(self.refused)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def chunk_progress(self) -> float:
        """Share of chunks that have finished, successfully or not (0.0 before dispatch)."""
        if not self.total_chunks:
            return 0.0
        return round((self.completed_chunks + self.failed_chunks) / self.total_chunks, 4)
