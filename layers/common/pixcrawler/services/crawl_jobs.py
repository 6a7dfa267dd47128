"""Crawl jobs: started by queueing a dispatch message, cancelled in the database, retried chunk by chunk."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pixcrawler import queues
from pixcrawler.messages import DispatchMessage, Message
from pixcrawler.models import CrawlJob, JobStatus, Project, ProjectStatus
from pixcrawler.schemas import CrawlJobCreate
from pixcrawler.services import activity, projects
from pixcrawler.services.errors import Conflict, Unavailable, found
from pixcrawler.settings import get_settings


def owned(user_id: uuid.UUID) -> Select[CrawlJob]:
    return select(CrawlJob).join(Project).where(Project.user_id == user_id)


def get(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> CrawlJob:
    job = session.scalars(owned(user_id).where(CrawlJob.id == crawl_job_id)).one_or_none()
    return found(job, "Crawl job", crawl_job_id)


def of_project(session: Session, user_id: uuid.UUID, project_id: int) -> Select[CrawlJob]:
    projects.get(session, user_id, project_id)
    return select(CrawlJob).where(CrawlJob.project_id == project_id)


def enqueue(session: Session, queue_url: str, message: Message, *undo: object) -> None:
    """Commit the job, then send the message that makes it run; if it cannot be sent, delete `undo` again.

    The commit comes first because a worker may receive the message milliseconds after it is sent (SQS long
    polling; the local stack's pollers show it every run) and must then find the row: a worker that finds no
    row drops the message, and the job would stay pending forever. If the send fails, the rows this request
    added (`undo`: the job and its activity entry) are deleted, so no job is left that nobody will run.
    """
    session.commit()
    try:
        queues.send(queue_url, message)
    except queues.QueueSendError as error:
        for row in undo:
            session.delete(row)
        session.commit()
        raise Unavailable("The job could not be queued; nothing was saved. Try again shortly.") from error


def create(session: Session, user_id: uuid.UUID, project_id: int, data: CrawlJobCreate) -> CrawlJob:
    project = projects.get(session, user_id, project_id)
    if project.status == ProjectStatus.ARCHIVED:
        raise Conflict(f"Project {project_id} is archived; unarchive it to start crawl jobs.")
    job = CrawlJob(project_id=project.id, **data.model_dump(mode="json"))
    session.add(job)
    session.flush()
    entry = activity.record(session, user_id, "crawl_job.started", "crawl_job", job.id, project_id=project.id)
    enqueue(session, get_settings().dispatch_queue_url, DispatchMessage(crawl_job_id=job.id), entry, job)
    return job


def cancel(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> CrawlJob:
    """Mark the job cancelled; crawl workers acknowledge a cancelled job's remaining chunks without work."""
    job = get(session, user_id, crawl_job_id)
    if job.status.finished:
        raise Conflict(f"Crawl job {crawl_job_id} is already {job.status}; only pending or running jobs cancel.")
    job.status = JobStatus.CANCELLED
    job.completed_at = datetime.now(UTC)
    session.flush()
    activity.record(session, user_id, "crawl_job.cancelled", "crawl_job", job.id)
    return job


def retry(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> CrawlJob:
    """Ask the dispatcher to reset and re-send only the failed chunks."""
    job = get(session, user_id, crawl_job_id)
    if job.status == JobStatus.CANCELLED:
        raise Conflict(f"Crawl job {crawl_job_id} was cancelled; start a new job instead.")
    if job.failed_chunks == 0:
        raise Conflict(f"Crawl job {crawl_job_id} has no failed chunks to retry.")
    entry = activity.record(session, user_id, "crawl_job.retried", "crawl_job", job.id, failed_chunks=job.failed_chunks)
    enqueue(session, get_settings().dispatch_queue_url, DispatchMessage(crawl_job_id=job.id, retry=True), entry)
    return job
