from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixcrawler.models.base import Base, Counter, CreatedAt, JobStatus, UpdatedAt, enum_column, non_negative

RefusalCounts = Annotated[
    dict[str, int],
    mapped_column(
        default=dict,
        server_default="{}",
        doc="Candidates not stored, by reason: `{code: count}` with codes from `pixcrawler.crawl.refusals.Refusal`",
    ),
]

if TYPE_CHECKING:
    from pixcrawler.models.image import Image
    from pixcrawler.models.project import Project
    from pixcrawler.models.validation import ValidationJob


class CrawlJob(Base):
    """A request to gather up to `max_images` images for some keywords from some providers."""

    __tablename__ = "crawl_jobs"
    __table_args__ = (
        Index(
            "ix_crawl_jobs_project_id",
            "project_id",
            info={
                "serves": "The cascade from `projects` and a project's jobs in id order (`GET /v1/projects/{id}` "
                "and `/crawl-jobs`); `ix_crawl_job_project_status` serves both as well (measured)."
            },
        ),
        Index(
            "ix_crawl_job_status",
            "status",
            info={
                "serves": "The sweep: pending jobs not touched since a cutoff (`status = 'pending' AND "
                "updated_at < ?`) and the running jobs whose stuck chunks it re-queues."
            },
        ),
        Index(
            "ix_crawl_job_project_status",
            "project_id",
            "status",
            info={
                "serves": "A project's jobs in one status (`project_id = ? AND status = ?`), which no product "
                "statement asks for: redundant with `ix_crawl_jobs_project_id` (measured; SCHEMA_DECISIONS.md)."
            },
        ),
        CheckConstraint("max_images >= 1", name="max_images_positive"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        *non_negative(
            "total_images",
            "downloaded_images",
            "valid_images",
            "total_chunks",
            "active_chunks",
            "completed_chunks",
            "failed_chunks",
            "queued_chunks",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    keywords: Mapped[list[str]]
    providers: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    urls: Mapped[list[str] | None] = mapped_column(
        deferred=True,
        doc="Explicit image URLs for the URL-list provider (up to 100,000). Deferred: only planning reads "
        "them, and every chunk locks and refreshes the job row, which would otherwise carry the whole list.",
    )
    max_images: Mapped[int]
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "crawl_job_status"),
        default=JobStatus.PENDING,
        server_default="pending",
    )
    progress: Mapped[Counter]
    total_images: Mapped[Counter]
    downloaded_images: Mapped[Counter]
    valid_images: Mapped[Counter]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    total_chunks: Mapped[Counter]
    active_chunks: Mapped[Counter]
    completed_chunks: Mapped[Counter]
    failed_chunks: Mapped[Counter]
    queued_chunks: Mapped[Counter] = mapped_column(
        doc="Chunk messages sent so far, retries included: a dispatch that finds fewer than `total_chunks` "
        "resumes sending"
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    refused: Mapped[RefusalCounts]
    deferred: Mapped[dict[str, int]] = mapped_column(
        default=dict,
        server_default="{}",
        doc="Candidates put off for later because their host was busy, by reason: `{code: count}` with codes "
        "from `pixcrawler.crawl.refusals.Deferral`; a candidate deferred twice counts twice",
    )
    respect_robots: Mapped[bool] = mapped_column(
        default=True,
        server_default=text("true"),
        doc="Honour image hosts' robots.txt (off only for hosts the user owns)",
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    project: Mapped[Project] = relationship(back_populates="crawl_jobs")
    chunks: Mapped[list[CrawlChunk]] = relationship(
        back_populates="crawl_job", cascade="all, delete-orphan", passive_deletes=True
    )
    images: Mapped[list[Image]] = relationship(
        back_populates="crawl_job", cascade="all, delete-orphan", passive_deletes=True
    )
    validation_jobs: Mapped[list[ValidationJob]] = relationship(
        back_populates="crawl_job", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def remaining_capacity(self) -> int:
        """Images the job can still take before it holds `max_images`."""
        return max(0, self.max_images - self.downloaded_images)


class CrawlChunk(Base):
    """One unit of crawl work (a keyword page of one provider); its row makes redelivery idempotent."""

    __tablename__ = "crawl_chunks"
    __table_args__ = (
        UniqueConstraint(
            "crawl_job_id",
            "chunk_index",
            info={
                "serves": "Dispatch plans each chunk once (`ON CONFLICT DO NOTHING`) and reads a job's pending or "
                "failed chunks in order; the cascade from `crawl_jobs`."
            },
        ),
        Index(
            "ix_crawl_chunk_status_updated",
            "status",
            "updated_at",
            info={
                "serves": "The sweep: chunks still pending or running since before a cutoff "
                "(`status IN (...) AND updated_at < ?`)."
            },
        ),
        *non_negative("chunk_index", "page", "attempts", "found", "downloaded", "skipped", "failed", "deferrals"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_job_id: Mapped[int] = mapped_column(ForeignKey("crawl_jobs.id", ondelete="CASCADE"))
    chunk_index: Mapped[int]
    keyword: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(40))
    page: Mapped[int] = mapped_column(default=1, server_default="1")
    cursor: Mapped[str | None] = mapped_column(Text, doc="Provider continuation token, when pages are not numbered")
    urls: Mapped[list[str] | None] = mapped_column(doc="This chunk's slice of a URL-list job")
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "crawl_chunk_status"), default=JobStatus.PENDING, server_default="pending"
    )
    attempts: Mapped[Counter]
    found: Mapped[Counter]
    downloaded: Mapped[Counter]
    skipped: Mapped[Counter]
    failed: Mapped[Counter]
    refused: Mapped[RefusalCounts]
    deferrals: Mapped[Counter] = mapped_column(
        doc="Times this chunk was put off for a busy host; also the version a commit must still find (exactly-once)"
    )
    pending: Mapped[list[Any] | None] = mapped_column(
        doc="Candidates still to try after a deferral (url and metadata each); the next delivery works on these only"
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    crawl_job: Mapped[CrawlJob] = relationship(back_populates="chunks")
