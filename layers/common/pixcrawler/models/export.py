from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixcrawler.models.base import Base, Counter, CreatedAt, JobStatus, UpdatedAt, enum_column, non_negative

if TYPE_CHECKING:
    from pixcrawler.models.crawl import CrawlJob
    from pixcrawler.models.profile import Profile


class ExportJob(Base):
    """An archive of a crawl job's images written to the data bucket, with a signed link that expires."""

    __tablename__ = "export_jobs"
    __table_args__ = (
        Index(
            "ix_export_jobs_crawl_job_id",
            "crawl_job_id",
            info={"serves": "The cascade from `crawl_jobs` (no product read filters exports by crawl job)."},
        ),
        Index(
            "ix_export_job_status",
            "status",
            info={
                "serves": "No product statement filters exports by status alone; kept from the original brief "
                "(measured, see SCHEMA_DECISIONS.md)."
            },
        ),
        Index(
            "ix_export_job_user_id",
            "user_id",
            "id",
            info={
                "serves": "`GET /v1/export-jobs` keyset pages and the ownership check (`user_id = ? AND id = ?`) "
                "of every export route; the cascade from `profiles`."
            },
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        *non_negative("total_images", "exported_images", "file_size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_job_id: Mapped[int] = mapped_column(ForeignKey("crawl_jobs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "export_job_status"), default=JobStatus.PENDING, server_default="pending"
    )
    progress: Mapped[Counter]
    format: Mapped[str] = mapped_column(String(16))
    total_images: Mapped[Counter]
    exported_images: Mapped[Counter]
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    download_url: Mapped[str | None] = mapped_column(Text)
    export_options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    storage_key: Mapped[str | None] = mapped_column(Text, doc="Object key of the finished export's first file")
    files: Mapped[list[Any]] = mapped_column(
        default=list,
        server_default="[]",
        doc="Every object of the finished export in order: name, key, size, sha256 and its download link",
    )
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(
        doc="Multipart upload state carried between invocations of a long export"
    )
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    split_counts: Mapped[dict[str, Any] | None] = mapped_column(
        doc="Images per split and label ({split: {label: count}}), set when an export with `splits` starts"
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    crawl_job: Mapped[CrawlJob] = relationship()
    user: Mapped[Profile] = relationship(back_populates="export_jobs")


class ExportItem(Base):
    """What a transformed export wrote for one image: the output's size, format, bytes and hash.

    Rows are written with the export's progress and checkpoint commits, under its lease, and overwritten if a
    resumed invocation streams the image again (the output is deterministic, so with the same facts); the
    manifest written at the end reads them, possibly in a later invocation than the one that streamed the
    image. Exports without a transform write none: their output is the stored image, whose facts are on the
    `images` row. `image_id` has no foreign key on purpose: the row records what the archive holds, which an
    image deleted later does not change.
    """

    __tablename__ = "export_items"
    __table_args__ = (
        UniqueConstraint(
            "export_job_id",
            "image_id",
            info={
                "serves": "The upsert of each streamed image (`ON CONFLICT (export_job_id, image_id)`), the "
                "manifest's read of an export's items in image order, and the cascade from `export_jobs`."
            },
        ),
        *non_negative("width", "height", "file_size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    export_job_id: Mapped[int] = mapped_column(ForeignKey("export_jobs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(doc="The exported image (`images.id`)")
    width: Mapped[int] = mapped_column(doc="Output width in pixels")
    height: Mapped[int] = mapped_column(doc="Output height in pixels")
    format: Mapped[str] = mapped_column(String(16), doc="Output format: jpeg, png or webp")
    file_size: Mapped[int] = mapped_column(BigInteger, doc="Bytes written into the archive")
    sha256: Mapped[str] = mapped_column(String(64), doc="SHA-256 of the bytes written")
