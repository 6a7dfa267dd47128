"""Stored images: filtered listings, short-lived view links, and deletion of row and object together."""

from __future__ import annotations

import enum
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy import delete as delete_rows
from sqlalchemy.orm import Session

from pixcrawler import bucket, links, object_keys
from pixcrawler.models import CrawlJob, Image, Project
from pixcrawler.schemas import ImageDetailResponse, ImageResponse
from pixcrawler.services import activity, crawl_jobs
from pixcrawler.services.errors import NotFound, found

VIEW_LINK_LIFETIME = timedelta(minutes=15)


class Validity(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNVALIDATED = "unvalidated"


def of_crawl_job(
    session: Session,
    user_id: uuid.UUID,
    crawl_job_id: int,
    keyword: str | None = None,
    validity: Validity | None = None,
) -> Select[Image]:
    crawl_jobs.get(session, user_id, crawl_job_id)
    query = select(Image).where(Image.crawl_job_id == crawl_job_id)
    if keyword is not None:
        query = query.where(Image.keyword == keyword)
    if validity == Validity.UNVALIDATED:
        query = query.where(Image.is_valid.is_(None))
    elif validity is not None:
        query = query.where(Image.is_valid.is_(validity == Validity.VALID))
    return query


def get(session: Session, user_id: uuid.UUID, image_id: int) -> Image:
    query = select(Image).join(CrawlJob).join(Project).where(Image.id == image_id, Project.user_id == user_id)
    return found(session.scalars(query).one_or_none(), "Image", image_id)


def view_url(image: Image) -> str:
    """A presigned GET shown inline in a browser; short-lived because it is re-issued on every read."""
    return links.presigned_get(image.storage_url, VIEW_LINK_LIFETIME)


def thumbnail_url(image: Image) -> str | None:
    """Like `view_url`, for the 256 px preview the crawl stored; None for images without one (ingested before
    previews existed, or whose pixels did not decode)."""
    if image.thumbnail_format is None:
        return None
    return links.presigned_get(object_keys.thumbnail_key(image.storage_url, image.thumbnail_format), VIEW_LINK_LIFETIME)


def response(image: Image) -> ImageResponse:
    """An image as listings show it: its row plus its thumbnail link."""
    return ImageResponse.model_validate({**_columns(image), "thumbnail_url": thumbnail_url(image)})


def detail(image: Image) -> ImageDetailResponse:
    return ImageDetailResponse.model_validate(
        {**_columns(image), "thumbnail_url": thumbnail_url(image), "view_url": view_url(image)}
    )


def _columns(image: Image) -> dict[str, Any]:
    return {name: getattr(image, name) for name in ImageResponse.model_fields if name != "thumbnail_url"}


def delete(session: Session, user_id: uuid.UUID, image_id: int) -> None:
    """Remove the row, keep the job's counters true, then the object (inside the transaction: S3 failing
    rolls the row back rather than leaving a row whose object is gone).

    One `DELETE ... RETURNING`: of concurrent deletes exactly one removes the row, moves the counters and the
    object and logs it; the others wait for its commit, find nothing and answer 404.
    """
    owned_jobs = select(CrawlJob.id).join(Project).where(Project.user_id == user_id)
    deleted = session.execute(
        delete_rows(Image)
        .where(Image.id == image_id, Image.crawl_job_id.in_(owned_jobs))
        .returning(Image.crawl_job_id, Image.storage_url, Image.is_valid, Image.thumbnail_format)
        .execution_options(synchronize_session=False)
    ).first()
    if deleted is None:
        raise NotFound(f"Image {image_id} not found.")
    job_id, key, was_valid, thumbnail_format = deleted
    counters = {"downloaded_images": func.greatest(CrawlJob.downloaded_images - 1, 0)}
    if was_valid:
        counters["valid_images"] = func.greatest(CrawlJob.valid_images - 1, 0)
    session.execute(update(CrawlJob).where(CrawlJob.id == job_id).values(counters))
    bucket.delete(sorted({key, object_keys.thumbnail_key(key, thumbnail_format)} if thumbnail_format else {key}))
    activity.record(session, user_id, "image.deleted", "image", image_id, crawl_job_id=job_id)
