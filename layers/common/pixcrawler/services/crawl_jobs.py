"""Crawl jobs: started by queueing a dispatch message, cancelled in the database, retried chunk by chunk."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from pixcrawler import queues
from pixcrawler.messages import DispatchMessage, Message
from pixcrawler.models import CrawlChunk, CrawlJob, JobStatus, Project, ProjectStatus
from pixcrawler.schemas import CrawlJobCreate
from pixcrawler.services import activity, projects
from pixcrawler.services.errors import Conflict, Unavailable, found
from pixcrawler.services.transitions import Lock, locked, transition
from pixcrawler.settings import get_settings

ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)


def owned(user_id: uuid.UUID) -> Select[CrawlJob]:
    return select(CrawlJob).join(Project).where(Project.user_id == user_id)


def get(session: Session, user_id: uuid.UUID, crawl_job_id: int, lock: Lock | None = None) -> CrawlJob:
    job = session.scalars(locked(owned(user_id).where(CrawlJob.id == crawl_job_id), CrawlJob, lock)).one_or_none()
    return found(job, "Crawl job", crawl_job_id)


def of_project(session: Session, user_id: uuid.UUID, project_id: int) -> Select[CrawlJob]:
    projects.get(session, user_id, project_id)
    return select(CrawlJob).where(CrawlJob.project_id == project_id)


def enqueue(session: Session, queue_url: str, message: Message, *undo: object) -> None:
    """Commit a new job, then send the message that makes it run; if it cannot be sent, delete `undo` again.

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
    project = projects.get(session, user_id, project_id, Lock.SHARE)
    if project.status == ProjectStatus.ARCHIVED:
        raise Conflict(f"Project {project_id} is archived; unarchive it to start crawl jobs.")
    job = CrawlJob(project_id=project.id, **data.model_dump(mode="json"))
    session.add(job)
    session.flush()
    entry = activity.record(session, user_id, "crawl_job.started", "crawl_job", job.id, project_id=project.id)
    enqueue(session, get_settings().dispatch_queue_url, DispatchMessage(crawl_job_id=job.id), entry, job)
    return job


def cancel(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> CrawlJob:
    """Mark the job cancelled; crawl workers acknowledge a cancelled job's remaining chunks without work.

    One conditional update: of concurrent cancels, and of a cancel racing the chunk that ends the job, exactly
    one moves the job; the others answer 409 naming the status it has now.
    """
    job = get(session, user_id, crawl_job_id)
    if not transition(session, job, ACTIVE, "Crawl job", status=JobStatus.CANCELLED, completed_at=datetime.now(UTC)):
        raise Conflict(f"Crawl job {crawl_job_id} is already {job.status}; only pending or running jobs cancel.")
    activity.record(session, user_id, "crawl_job.cancelled", "crawl_job", job.id)
    return job


def retry(session: Session, user_id: uuid.UUID, crawl_job_id: int) -> CrawlJob:
    """Move the failed chunks back to pending and the job back to running, then ask dispatch to re-send them.

    The job row is locked first (as chunk workers lock it), so of concurrent retries exactly one finds failed
    chunks; the others answer 409. The dispatch message is sent before this transaction commits: dispatch locks
    the same row, so it waits for the commit, and if SQS refuses, the rollback leaves the job as it was.
    """
    job = get(session, user_id, crawl_job_id, Lock.UPDATE)
    if job.status == JobStatus.CANCELLED:
        raise Conflict(f"Crawl job {crawl_job_id} was cancelled; start a new job instead.")
    failed = session.scalars(
        update(CrawlChunk)
        .where(CrawlChunk.crawl_job_id == job.id, CrawlChunk.status == JobStatus.FAILED)
        .values(status=JobStatus.PENDING, completed_at=None)
        .returning(CrawlChunk.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not failed:
        raise Conflict(f"Crawl job {crawl_job_id} has no failed chunks to retry.")
    session.execute(
        update(CrawlJob)
        .where(CrawlJob.id == job.id)
        .values(
            failed_chunks=CrawlJob.failed_chunks - len(failed),
            active_chunks=CrawlJob.active_chunks + len(failed),
            progress=CrawlJob.completed_chunks * 100 // func.greatest(CrawlJob.total_chunks, 1),
            status=JobStatus.RUNNING,
            completed_at=None,
            error_message=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(job)
    activity.record(session, user_id, "crawl_job.retried", "crawl_job", job.id, failed_chunks=len(failed))
    try:
        queues.send(get_settings().dispatch_queue_url, DispatchMessage(crawl_job_id=job.id, retry=True))
    except queues.QueueSendError as error:
        raise Unavailable("The retry could not be queued; nothing was changed. Try again shortly.") from error
    return job
