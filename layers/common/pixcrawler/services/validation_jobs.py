"""Validation jobs: stored with their rules and started by one planning message."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from pixcrawler import lifecycle
from pixcrawler.models import CrawlJob, Image, Project, ValidationJob
from pixcrawler.schemas import ValidationJobCreate
from pixcrawler.services import crawl_jobs
from pixcrawler.services.errors import Conflict, found
from pixcrawler.services.transitions import Lock


def get(session: Session, user_id: uuid.UUID, validation_job_id: int) -> ValidationJob:
    query = (
        select(ValidationJob)
        .join(CrawlJob)
        .join(Project)
        .where(ValidationJob.id == validation_job_id, Project.user_id == user_id)
    )
    return found(session.scalars(query).one_or_none(), "Validation job", validation_job_id)


def of_crawl_job(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> Select[ValidationJob]:
    crawl_jobs.get(session, user_id, crawl_job_id)
    return select(ValidationJob).where(ValidationJob.crawl_job_id == crawl_job_id)


def create(session: Session, user_id: uuid.UUID, crawl_job_id: int, data: ValidationJobCreate) -> ValidationJob:
    """The crawl job is share-locked while it is checked: a concurrent deletion either waits for this job to be
    stored (and removes it with the rest) or has already happened, and this answers 404."""
    crawl_job = crawl_jobs.get(session, user_id, crawl_job_id, Lock.SHARE)
    if not session.scalar(select(exists().where(Image.crawl_job_id == crawl_job.id))):
        raise Conflict(f"Crawl job {crawl_job_id} has no images to validate.")
    job = ValidationJob(crawl_job_id=crawl_job.id, name=data.name, validation_rules=data.rules.model_dump(mode="json"))
    return lifecycle.start(session, user_id, job, crawl_job_id=crawl_job.id)
