"""Crawl jobs: started by queueing a dispatch message, cancelled in the database, retried chunk by chunk (the
status changes themselves are `pixcrawler.lifecycle`'s)."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pixcrawler import lifecycle
from pixcrawler.models import CrawlJob, JobStatus, Project, ProjectStatus
from pixcrawler.schemas import CrawlJobCreate
from pixcrawler.services import projects
from pixcrawler.services.errors import Conflict, found
from pixcrawler.services.transitions import Lock, locked


def owned(user_id: uuid.UUID) -> Select[CrawlJob]:
    return select(CrawlJob).join(Project).where(Project.user_id == user_id)


def get(session: Session, user_id: uuid.UUID, crawl_job_id: int, lock: Lock | None = None) -> CrawlJob:
    job = session.scalars(locked(owned(user_id).where(CrawlJob.id == crawl_job_id), CrawlJob, lock)).one_or_none()
    return found(job, "Crawl job", crawl_job_id)


def of_project(session: Session, user_id: uuid.UUID, project_id: int) -> Select[CrawlJob]:
    projects.get(session, user_id, project_id)
    return select(CrawlJob).where(CrawlJob.project_id == project_id)


def create(session: Session, user_id: uuid.UUID, project_id: int, data: CrawlJobCreate) -> CrawlJob:
    project = projects.get(session, user_id, project_id, Lock.SHARE)
    if project.status == ProjectStatus.ARCHIVED:
        raise Conflict(f"Project {project_id} is archived; unarchive it to start crawl jobs.")
    job = CrawlJob(project_id=project.id, **data.model_dump(mode="json"))
    return lifecycle.start(session, user_id, job, project_id=project.id)


def cancel(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> CrawlJob:
    """Mark the job cancelled; crawl workers acknowledge a cancelled job's remaining chunks without work.

    One conditional update: of concurrent cancels, and of a cancel racing the chunk that ends the job, exactly
    one moves the job; the others answer 409 naming the status it has now.
    """
    job = get(session, user_id, crawl_job_id)
    if not lifecycle.cancel(session, user_id, job):
        raise Conflict(f"Crawl job {crawl_job_id} is already {job.status}; only pending or running jobs cancel.")
    return job


def retry(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> CrawlJob:
    """Move the failed chunks back to pending and the job back to running, then ask dispatch to re-send them.

    The job row is locked first (as chunk workers lock it), so of concurrent retries exactly one finds failed
    chunks; the others answer 409. If SQS refuses the dispatch message, the rollback leaves the job as it was.
    """
    job = get(session, user_id, crawl_job_id, Lock.UPDATE)
    if job.status == JobStatus.CANCELLED:
        raise Conflict(f"Crawl job {crawl_job_id} was cancelled; start a new job instead.")
    if not lifecycle.retry_crawl(session, user_id, job):
        raise Conflict(f"Crawl job {crawl_job_id} has no failed chunks to retry.")
    return job
