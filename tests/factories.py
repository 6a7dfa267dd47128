"""Rows and stored objects for tests that start mid-pipeline (validation, export, API reads)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy.orm import Session

from pixcrawler import object_keys
from pixcrawler.models import CrawlJob, Image, JobStatus, Profile, Project
from pixcrawler.settings import get_settings
from pixcrawler.validation import ingest
from pixcrawler_local import samples


def profile(session: Session, **fields: Any) -> Profile:
    user_id = fields.pop("id", None) or uuid.uuid4()
    row = Profile(id=user_id, email=fields.pop("email", f"{user_id.hex[:12]}@example.com"), **fields)
    session.add(row)
    session.flush()
    return row


def project(session: Session, owner: Profile | None = None, **fields: Any) -> Project:
    row = Project(user=owner or profile(session), name=fields.pop("name", "project"), **fields)
    session.add(row)
    session.flush()
    return row


def crawl_job(session: Session, parent: Project | None = None, **fields: Any) -> CrawlJob:
    defaults: dict[str, Any] = {
        "name": "crawl",
        "keywords": ["cat"],
        "providers": ["urls"],
        "max_images": 100,
        "status": JobStatus.COMPLETED,
    }
    row = CrawlJob(project=parent or project(session), **{**defaults, **fields})
    session.add(row)
    session.flush()
    return row


def stored_image(
    session: Session,
    s3: Any,
    bucket: str,
    job: CrawlJob,
    data: bytes | None = None,
    *,
    seed: int = 0,
    keyword: str = "cat",
    ingested: bool = False,
    **fields: Any,
) -> Image:
    """An image row plus its object in the bucket, as the crawl worker would have left them; `ingested`: with
    the facts and thumbnail today's crawl takes (`ingest.take`), else as rows from before it did."""
    data = data if data is not None else samples.jpeg(seed)
    digest = hashlib.sha256(data).hexdigest()
    key = object_keys.image_key(job.project_id, job.id, keyword, digest, fields.pop("extension", "jpg"))
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")
    if ingested:
        taken = ingest.take(data, get_settings().validation_max_pixels)
        if taken.thumbnail is not None and taken.thumbnail_format is not None:
            thumbnail_key = object_keys.thumbnail_key(key, taken.thumbnail_format)
            s3.put_object(
                Bucket=bucket, Key=thumbnail_key, Body=taken.thumbnail, ContentType=f"image/{taken.thumbnail_format}"
            )
        fields = {**taken.columns, **fields}
    defaults: dict[str, Any] = {
        "original_url": f"https://images.example.com/{digest[:12]}.jpg",
        "filename": f"{digest[:12]}.jpg",
        "width": 256,
        "height": 256,
        "format": "jpeg",
        "provider": "urls",
        "license": "cc-by",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "creator": "Sample Creator",
        "title": f"sample {seed}",
        "source_url": "https://images.example.com/page",
    }
    row = Image(
        crawl_job=job,
        storage_url=key,
        sha256=digest,
        file_size=len(data),
        keyword=keyword,
        **{**defaults, **fields},
    )
    session.add(row)
    session.flush()
    return row
