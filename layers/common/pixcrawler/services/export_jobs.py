"""Export jobs and their download links.

A link is `/v1/downloads/{token}` on our API (see `pixcrawler.links`): it lives as long as promised, and the
route trades it for a presigned URL valid for minutes, so no long-lived S3 signature is ever handed out.
"""

from __future__ import annotations

import posixpath
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pixcrawler import lifecycle, links
from pixcrawler.models import ExportJob, JobStatus
from pixcrawler.schemas import ExportJobCreate
from pixcrawler.schemas.export import ExportOptions
from pixcrawler.services import activity, crawl_jobs
from pixcrawler.services.errors import Conflict, NotFound, found
from pixcrawler.services.transitions import Lock

DEFAULT_LINK_LIFETIME_HOURS = ExportOptions.model_fields["link_lifetime_hours"].default


def owned(user_id: uuid.UUID) -> Select[ExportJob]:
    return select(ExportJob).where(ExportJob.user_id == user_id)


def get(session: Session, user_id: uuid.UUID, export_job_id: int) -> ExportJob:
    job = session.scalars(owned(user_id).where(ExportJob.id == export_job_id)).one_or_none()
    return found(job, "Export job", export_job_id)


def create(session: Session, user_id: uuid.UUID, crawl_job_id: int, data: ExportJobCreate) -> ExportJob:
    crawl_job = crawl_jobs.get(session, user_id, crawl_job_id, Lock.SHARE)
    if crawl_job.status in lifecycle.ACTIVE:
        raise Conflict(f"Crawl job {crawl_job_id} is still {crawl_job.status}; export it once it has finished.")
    job = ExportJob(
        crawl_job_id=crawl_job.id,
        user_id=user_id,
        name=data.name,
        format=data.format.value,
        export_options=data.options.model_dump(mode="json"),
    )
    return lifecycle.start(session, user_id, job, crawl_job_id=crawl_job.id)


def link_expired(job: ExportJob, now: datetime | None = None) -> bool:
    return job.expires_at is not None and job.expires_at <= (now or datetime.now(UTC))


def issue_link(session: Session, user_id: uuid.UUID, export_job_id: int) -> ExportJob:
    """Fresh links to every file of a finished export, living as long as the export's `link_lifetime_hours`.

    Every call issues its own link (each one works until it expires); the stored one is written only while
    the export still exists, so a link racing the project's deletion answers 404.
    """
    job = get(session, user_id, export_job_id)
    if job.status != JobStatus.COMPLETED or not job.storage_key:
        raise Conflict(f"Export job {export_job_id} is {job.status}; links exist only for completed exports.")
    hours = int(job.export_options.get("link_lifetime_hours", DEFAULT_LINK_LIFETIME_HOURS))
    link, files = links.issue_all(job.id, job.files, timedelta(hours=hours))
    lifecycle.update_while(
        session, job, (JobStatus.COMPLETED,), download_url=link.url, expires_at=link.expires_at, files=files
    )
    activity.record(
        session, user_id, "export_link.issued", "export_job", job.id, expires_at=link.expires_at.isoformat()
    )
    return job


def download_url(session: Session, token: str) -> str:
    """Trade a link token for a presigned URL of the export's file it names (LinkInvalid / LinkExpired
    otherwise). An export finished before exports listed their files has its one object in `storage_key`."""
    export_job_id, index = links.verify_file(token)
    job = session.get(ExportJob, export_job_id)
    if job is None or job.status != JobStatus.COMPLETED or not job.storage_key:
        raise NotFound("This export no longer exists.")
    keys = [file["key"] for file in job.files] or [job.storage_key]
    if index >= len(keys):
        raise NotFound("This export has no such file.")
    return links.presigned_download(keys[index], posixpath.basename(keys[index]))
