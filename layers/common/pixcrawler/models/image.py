from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixcrawler.models.base import Base, CreatedAt, non_negative

if TYPE_CHECKING:
    from pixcrawler.models.crawl import CrawlJob


class Image(Base):
    """One stored image of a crawl job, with the provenance and licence a dataset must carry."""

    __tablename__ = "images"
    __table_args__ = (
        Index(
            "ix_image_crawl_job_id",
            "crawl_job_id",
            "id",
            info={
                "serves": "Every read of a job's images in id order: `GET /v1/crawl-jobs/{id}/images` keyset "
                "pages, validation batch planning, export pages; and the cascade from `crawl_jobs`."
            },
        ),
        Index(
            "ix_images_crawl_job_id_keyword",
            "crawl_job_id",
            "keyword",
            "id",
            info={
                "serves": "`GET /v1/crawl-jobs/{id}/images?keyword=` keyset pages: without it a keyword with few "
                "or no images in a large job walks the whole job (measured)."
            },
        ),
        Index(
            "ix_images_crawl_job_id_is_valid",
            "crawl_job_id",
            "is_valid",
            "id",
            info={
                "serves": "`GET /v1/crawl-jobs/{id}/images?validity=` keyset pages (`is_valid IS true / false / "
                "NULL`), the export's valid-only selection and validation's unvalidated images: without it a rare "
                "validity in a large job walks the whole job (measured)."
            },
        ),
        UniqueConstraint(
            "crawl_job_id",
            "sha256",
            info={
                "serves": "Exactly-once crawling: the chunk commit inserts `ON CONFLICT (crawl_job_id, sha256) DO "
                "NOTHING`; a chunk's images already in the job are the rows that insert skips."
            },
        ),
        *non_negative("width", "height", "file_size"),
        CheckConstraint(
            "thumbnail_format IS NULL OR thumbnail_format IN ('jpeg', 'webp', 'original')",
            name="thumbnail_format_known",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    crawl_job_id: Mapped[int] = mapped_column(ForeignKey("crawl_jobs.id", ondelete="CASCADE"))
    original_url: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(255))
    storage_url: Mapped[str] = mapped_column(Text, doc="Object key in the data bucket")
    width: Mapped[int | None]
    height: Mapped[int | None]
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    format: Mapped[str | None] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[int | None] = mapped_column(BigInteger, doc="64-bit perceptual hash, stored signed")
    decodable: Mapped[bool | None] = mapped_column(
        doc="Whether the pixels decoded at ingest; NULL for images ingested before the crawl took facts"
    )
    decode_error: Mapped[dict[str, Any] | None] = mapped_column(
        doc="Why not (`{code, message}` as in validation_errors), when not decodable"
    )
    mode: Mapped[str | None] = mapped_column(String(16), doc="Pillow mode (RGB, L, P, ...); NULL if the header failed")
    orientation: Mapped[int | None] = mapped_column(SmallInteger, doc="EXIF orientation 1-8, when present")
    blank_variance: Mapped[float | None] = mapped_column(DOUBLE_PRECISION, doc="Pixel variance of the 64x64 greyscale")
    thumbnail_format: Mapped[str | None] = mapped_column(
        String(8),
        doc="`jpeg` or `webp` (pictures with transparency): the 256 px preview beside the original "
        "(`object_keys.thumbnail_key`); `original` when the original is small enough to be its own; NULL when "
        "there is none",
    )
    keyword: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(40))
    source_url: Mapped[str | None] = mapped_column(Text, doc="The page the image was found on")
    title: Mapped[str | None] = mapped_column(Text)
    license: Mapped[str | None] = mapped_column(String(100))
    license_url: Mapped[str | None] = mapped_column(Text)
    creator: Mapped[str | None] = mapped_column(Text)
    is_valid: Mapped[bool | None]
    validation_errors: Mapped[list[Any] | None]
    created_at: Mapped[CreatedAt]

    crawl_job: Mapped[CrawlJob] = relationship(back_populates="images")
