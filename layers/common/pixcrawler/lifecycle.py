"""Every status change of a crawl, validation or export job, and the activity row it writes.

A job's status, its timestamps, its `error_message` and the activity row that tells its owner move here and
nowhere else. The activity is named `<kind>.<event>`: the kind is `crawl_job`, `validation_job` or
`export_job`, the event one of `Event` (`crawl_job.started`, `validation_job.failed`, `export_job.completed`).

Each transition is one conditional statement (`UPDATE ... WHERE id = :id AND status IN (...) RETURNING`):
PostgreSQL re-checks the condition after waiting for a concurrent writer, so of callers racing for the same
transition exactly one moves the row, and only that one writes the activity row. Reading, deciding in Python
and writing back would let every caller decide on the same stale read.

| kind | started (request accepted) | begin (worker) | completed | failed | cancelled | retried |
| --- | --- | --- | --- | --- | --- | --- |
| crawl | yes | pending -> running | running | pending, running | pending, running | -> running, failed chunks too |
| validation | yes | pending -> running | running | pending, running | - | failed -> running |
| export | yes | pending -> running | running | pending, running | - | - |

`begin` writes no activity row: the job's `started` row was written when the request was accepted.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from pixcrawler import observability, queues
from pixcrawler.messages import DispatchMessage, ExportMessage, Message, ValidationMessage
from pixcrawler.models import ActivityLog, CrawlChunk, CrawlJob, ExportJob, JobStatus, Project, ValidationJob
from pixcrawler.services import activity
from pixcrawler.services.errors import NotFound, Unavailable
from pixcrawler.settings import get_settings

Job = TypeVar("Job", CrawlJob, ValidationJob, ExportJob)
ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)
KINDS: dict[type[Any], str] = {CrawlJob: "crawl_job", ValidationJob: "validation_job", ExportJob: "export_job"}
LABELS: dict[type[Any], str] = {CrawlJob: "Crawl job", ValidationJob: "Validation job", ExportJob: "Export job"}


class Event(enum.StrEnum):
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRIED = "retried"


def action(model: type[Any], event: Event) -> str:
    """The activity name of `event` for jobs of `model`: `<kind>.<event>`."""
    return f"{KINDS[model]}.{event.value}"


def now() -> datetime:
    return datetime.now(UTC)


# --- the one conditional update --------------------------------------------------------------------------


def update_while(
    session: Session,
    row: Job,
    allowed: Collection[JobStatus],
    where: Collection[ColumnElement[bool]] = (),
    **values: Any,
) -> bool:
    """Set `values` on `row` only while its status is one of `allowed` (and `where` holds); False when another
    caller moved it first. Either way `row` holds what is now stored; NotFound when it has been deleted."""
    model = type(row)
    moved = session.scalars(
        update(model)
        .where(model.id == row.id, model.status.in_(allowed), *where)
        .values(**values)
        .returning(model)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if moved is not None:
        return True
    current = session.scalars(select(model).where(model.id == row.id).execution_options(populate_existing=True))
    if current.one_or_none() is None:
        raise NotFound(f"{LABELS[model]} {row.id} not found.")
    return False


def _record(session: Session, job: Job, event: Event, user_id: uuid.UUID | None = None, **details: Any) -> ActivityLog:
    """The activity row of `event`, for `user_id` or else the job's owner, in the transition's transaction."""
    owner = user_id if user_id is not None else _owner(session, job)
    return activity.record(session, owner, action(type(job), event), KINDS[type(job)], job.id, **details)


def _owner(session: Session, job: CrawlJob | ValidationJob | ExportJob) -> uuid.UUID | None:
    if isinstance(job, ExportJob):
        return job.user_id
    crawl_job_id = job.id if isinstance(job, CrawlJob) else job.crawl_job_id
    return session.scalar(select(Project.user_id).join(CrawlJob).where(CrawlJob.id == crawl_job_id))


# --- transitions ---------------------------------------------------------------------------------------------


def _first_message(job: CrawlJob | ValidationJob | ExportJob) -> tuple[str, Message]:
    """The queue and message that make a new job of each kind run."""
    settings = get_settings()
    if isinstance(job, CrawlJob):
        return settings.dispatch_queue_url, DispatchMessage(crawl_job_id=job.id)
    if isinstance(job, ValidationJob):
        return settings.validation_queue_url, ValidationMessage(validation_job_id=job.id)
    return settings.export_queue_url, ExportMessage(export_job_id=job.id)


def start(session: Session, user_id: uuid.UUID, job: Job, **details: Any) -> Job:
    """Store a new `pending` job with its `started` row, commit, and queue the message that makes it run."""
    session.add(job)
    session.flush()
    entry = _record(session, job, Event.STARTED, user_id, **details)
    queue_url, message = _first_message(job)
    commit_then_send(session, queue_url, message, entry, job)
    return job


def commit_then_send(session: Session, queue_url: str, message: Message, *undo: object) -> None:
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


def begin(session: Session, job: Job) -> bool:
    """A worker takes up a pending job: `running`, `started_at` kept from a first start. No activity row."""
    return update_while(
        session, job, ACTIVE, status=JobStatus.RUNNING, started_at=func.coalesce(type(job).started_at, now())
    )


def complete(
    session: Session,
    job: Job,
    *,
    where: Collection[ColumnElement[bool]] = (),
    settle: Callable[[], Mapping[str, Any]] | None = None,
    **details: Any,
) -> bool:
    """A running job (while `where` holds) completes. Only the caller that completes it runs `settle` (work that
    completing entails, in the same transaction) and writes the `completed` row with `details` and what
    `settle` returns."""
    moved = update_while(
        session,
        job,
        (JobStatus.RUNNING,),
        where,
        status=JobStatus.COMPLETED,
        progress=100,
        completed_at=now(),
        error_message=None,
    )
    if moved:
        _record(session, job, Event.COMPLETED, **details, **(settle() if settle else {}))
    return moved


def fail(session: Session, job: Job, error: str, **details: Any) -> bool:
    """A pending or running job fails with `error` (fit to show its user), recorded in its `failed` row and
    counted in the `JobsFailed` metric."""
    moved = update_while(session, job, ACTIVE, status=JobStatus.FAILED, error_message=error, completed_at=now())
    if moved:
        _record(session, job, Event.FAILED, error=error, **details)
        observability.job_failed(KINDS[type(job)].removesuffix("_job"))
    return moved


def cancel(session: Session, user_id: uuid.UUID, job: Job) -> bool:
    """The user cancels a pending or running job; False (and `job` as now stored) when it had already ended."""
    moved = update_while(session, job, ACTIVE, status=JobStatus.CANCELLED, completed_at=now())
    if moved:
        _record(session, job, Event.CANCELLED, user_id)
    return moved


def resume(session: Session, job: ValidationJob) -> bool:
    """A failed validation job whose planning message arrives again (redriven from the dead-letter queue or
    re-sent) runs again from its unfinished batches."""
    moved = update_while(
        session, job, (JobStatus.FAILED,), status=JobStatus.RUNNING, error_message=None, completed_at=None
    )
    if moved:
        _record(session, job, Event.RETRIED)
    return moved


def retry_crawl(session: Session, user_id: uuid.UUID, job: CrawlJob) -> int:
    """Move the failed chunks of a job the caller has locked back to pending and the job back to running, and
    ask dispatch to re-send them; returns how many chunks (0: nothing to retry, nothing changed). Of concurrent
    retries (they wait for each other's lock) exactly one finds failed chunks.

    The dispatch message is sent before the caller commits: dispatch locks the same row, so it waits for the
    commit, and if SQS refuses, the rollback leaves the job as it was.
    """
    retriable = (JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED)
    failed = session.scalars(
        update(CrawlChunk)
        .where(
            CrawlChunk.crawl_job_id == job.id,
            CrawlChunk.status == JobStatus.FAILED,
            select(CrawlJob.id).where(CrawlJob.id == job.id, CrawlJob.status.in_(retriable)).exists(),
        )
        .values(status=JobStatus.PENDING, completed_at=None)
        .returning(CrawlChunk.id)
        .execution_options(synchronize_session=False)
    ).all()
    if not failed:
        return 0
    update_while(
        session,
        job,
        retriable,
        failed_chunks=CrawlJob.failed_chunks - len(failed),
        active_chunks=CrawlJob.active_chunks + len(failed),
        progress=CrawlJob.completed_chunks * 100 // func.greatest(CrawlJob.total_chunks, 1),
        status=JobStatus.RUNNING,
        completed_at=None,
        error_message=None,
    )
    _record(session, job, Event.RETRIED, user_id, failed_chunks=len(failed))
    try:
        queues.send(get_settings().dispatch_queue_url, DispatchMessage(crawl_job_id=job.id, retry=True))
    except queues.QueueSendError as error:
        raise Unavailable("The retry could not be queued; nothing was changed. Try again shortly.") from error
    return len(failed)
