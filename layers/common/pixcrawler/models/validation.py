from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixcrawler.models.base import Base, Counter, CreatedAt, JobStatus, UpdatedAt, enum_column, non_negative

if TYPE_CHECKING:
    from pixcrawler.models.crawl import CrawlJob


class ValidationJob(Base):
    """A run of validation rules over a crawl job's images, split into batches of contiguous image ids."""

    __tablename__ = "validation_jobs"
    __table_args__ = (
        Index(
            "ix_validation_jobs_crawl_job_id",
            "crawl_job_id",
            info={
                "serves": "`GET /v1/crawl-jobs/{id}/validation-jobs`, the export's check for a completed "
                "validation of its job, and the cascade from `crawl_jobs`."
            },
        ),
        Index(
            "ix_validation_job_status",
            "status",
            info={
                "serves": "No product statement filters validation jobs by status alone; kept from the original "
                "brief (measured, see SCHEMA_DECISIONS.md)."
            },
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        *non_negative("total_images", "validated_images", "invalid_images", "total_batches", "completed_batches"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_job_id: Mapped[int] = mapped_column(ForeignKey("crawl_jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "validation_job_status"), default=JobStatus.PENDING, server_default="pending"
    )
    progress: Mapped[Counter]
    total_images: Mapped[Counter]
    validated_images: Mapped[Counter]
    invalid_images: Mapped[Counter]
    total_batches: Mapped[Counter]
    completed_batches: Mapped[Counter]
    validation_rules: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    crawl_job: Mapped[CrawlJob] = relationship(back_populates="validation_jobs")
    batches: Mapped[list[ValidationBatch]] = relationship(
        back_populates="validation_job", cascade="all, delete-orphan", passive_deletes=True
    )


class ValidationBatch(Base):
    """A contiguous range of a crawl job's image ids validated by one message.

    Its status flips to completed in the same transaction that writes the images' results and bumps the
    job's counters, so a redelivered or concurrently delivered batch can never count twice.
    """

    __tablename__ = "validation_batches"
    __table_args__ = (
        UniqueConstraint(
            "validation_job_id",
            "batch_index",
            info={
                "serves": "Planning inserts each batch once (`ON CONFLICT DO NOTHING`), the worker finds its batch "
                "by `(validation_job_id, batch_index)`, and the cascade from `validation_jobs`."
            },
        ),
        CheckConstraint("first_image_id <= last_image_id", name="image_range_ordered"),
        *non_negative("batch_index", "image_count", "valid_images", "invalid_images"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    validation_job_id: Mapped[int] = mapped_column(ForeignKey("validation_jobs.id", ondelete="CASCADE"))
    batch_index: Mapped[int]
    first_image_id: Mapped[int]
    last_image_id: Mapped[int]
    image_count: Mapped[Counter]
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "validation_batch_status"), default=JobStatus.PENDING, server_default="pending"
    )
    valid_images: Mapped[Counter]
    invalid_images: Mapped[Counter]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    validation_job: Mapped[ValidationJob] = relationship(back_populates="batches")
