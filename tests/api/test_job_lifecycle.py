"""Every status change of every job kind goes through `pixcrawler.lifecycle`: it sets the status, timestamps and
error text, and writes exactly one activity row named `<kind>.<event>`, and of callers racing for it one wins."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pixcrawler import db, lifecycle
from pixcrawler.crawl import planning
from pixcrawler.exports import worker as export_worker
from pixcrawler.messages import DispatchMessage
from pixcrawler.models import ActivityLog, CrawlChunk, CrawlJob, ExportJob, JobStatus, ValidationJob
from pixcrawler.validation import worker as validation_worker
from tests import factories
from tests.api.conftest import CALLERS, queued

AnyJob = CrawlJob | ValidationJob | ExportJob
Make = Callable[[Session, JobStatus], AnyJob]


def _crawl(session: Session, status: JobStatus) -> CrawlJob:
    return factories.crawl_job(session, status=status, total_chunks=2, active_chunks=1, completed_chunks=1)


def _validation(session: Session, status: JobStatus) -> ValidationJob:
    job = ValidationJob(crawl_job=factories.crawl_job(session), name="v", status=status)
    session.add(job)
    session.flush()
    return job


def _export(session: Session, status: JobStatus) -> ExportJob:
    crawl = factories.crawl_job(session)
    job = ExportJob(crawl_job=crawl, user_id=crawl.project.user_id, name="e", format="zip", status=status)
    session.add(job)
    session.flush()
    return job


def _owner(session: Session, job: AnyJob) -> Any:
    if isinstance(job, ExportJob):
        return job.user_id
    crawl = job if isinstance(job, CrawlJob) else session.get_one(CrawlJob, job.crawl_job_id)
    return crawl.project.user_id


def _rows(session: Session) -> list[tuple[str, str | None, str | None, Any]]:
    session.expire_all()
    return [
        (row.action, row.resource_type, row.resource_id, row.user_id)
        for row in session.scalars(select(ActivityLog).order_by(ActivityLog.id))
    ]


KINDS: dict[str, Make] = {"crawl_job": _crawl, "validation_job": _validation, "export_job": _export}


@pytest.mark.parametrize("kind", KINDS)
def test_start_stores_a_pending_job_with_one_started_row_and_queues_it(
    kind: str, session: Session, aws: dict[str, Any]
) -> None:
    template = KINDS[kind](session, JobStatus.COMPLETED)
    user = _owner(session, template)
    job = type(template)(**{key: getattr(template, key) for key in _copied(template)})
    lifecycle.start(session, user, job)
    assert job.status is JobStatus.PENDING
    assert _rows(session) == [(f"{kind}.started", kind, str(job.id), user)]
    queue = {"crawl_job": "dispatch", "validation_job": "validation", "export_job": "export"}[kind]
    assert [body[f"{kind}_id"] for body in queued(aws, queue)] == [job.id]


def _copied(job: AnyJob) -> list[str]:
    if isinstance(job, CrawlJob):
        return ["project_id", "name", "keywords", "providers", "max_images"]
    if isinstance(job, ValidationJob):
        return ["crawl_job_id", "name"]
    return ["crawl_job_id", "user_id", "name", "format"]


def _complete(session: Session, job: AnyJob) -> bool:
    return lifecycle.complete(session, job, images=3)


def _fail(session: Session, job: AnyJob) -> bool:
    return lifecycle.fail(session, job, "it broke")


def _cancel(session: Session, job: AnyJob) -> bool:
    return lifecycle.cancel(session, _owner(session, job), job)


def _resume(session: Session, job: AnyJob) -> bool:
    assert isinstance(job, ValidationJob)
    return lifecycle.resume(session, job)


# (kind, event, status before, transition, status after, error_message after)
ENDINGS = [
    (kind, "completed", JobStatus.RUNNING, _complete, JobStatus.COMPLETED, None)
    for kind in ("crawl_job", "validation_job", "export_job")
] + [
    *((kind, "failed", JobStatus.RUNNING, _fail, JobStatus.FAILED, "it broke") for kind in KINDS),
    *((kind, "failed", JobStatus.PENDING, _fail, JobStatus.FAILED, "it broke") for kind in KINDS),
    ("crawl_job", "cancelled", JobStatus.RUNNING, _cancel, JobStatus.CANCELLED, None),
    ("crawl_job", "cancelled", JobStatus.PENDING, _cancel, JobStatus.CANCELLED, None),
    ("validation_job", "retried", JobStatus.FAILED, _resume, JobStatus.RUNNING, None),
]


@pytest.mark.parametrize(("kind", "event", "before", "transition", "after", "error"), ENDINGS)
def test_each_transition_writes_one_row_named_kind_event_and_a_second_caller_changes_nothing(
    kind: str,
    event: str,
    before: JobStatus,
    transition: Callable[[Session, AnyJob], bool],
    after: JobStatus,
    error: str | None,
    session: Session,
) -> None:
    job = KINDS[kind](session, before)
    if before is JobStatus.FAILED:
        job.error_message = "earlier failure"
    assert transition(session, job)
    assert (job.status, job.error_message) == (after, error)
    assert (job.completed_at is None) == (after is JobStatus.RUNNING)
    session.commit()
    assert not transition(session, job)
    assert _rows(session) == [(f"{kind}.{event}", kind, str(job.id), _owner(session, job))]


def test_begin_runs_a_pending_job_keeping_its_first_start_and_writes_no_row(session: Session) -> None:
    for make in KINDS.values():
        job = make(session, JobStatus.PENDING)
        assert lifecycle.begin(session, job)
        first = job.started_at
        assert job.status is JobStatus.RUNNING and first is not None
        assert lifecycle.begin(session, job)
        assert job.started_at == first
        assert not lifecycle.begin(session, make(session, JobStatus.CANCELLED))
    assert _rows(session) == []


def test_retrying_a_crawl_job_resets_its_failed_chunks_and_writes_one_row(
    session: Session, aws: dict[str, Any]
) -> None:
    job = factories.crawl_job(session, status=JobStatus.FAILED, total_chunks=2, failed_chunks=2, progress=100)
    job.error_message = "all 2 chunk(s) failed"
    for index in range(2):
        session.add(
            CrawlChunk(crawl_job=job, chunk_index=index, keyword="cat", provider="urls", status=JobStatus.FAILED)
        )
    session.flush()
    user = job.project.user_id
    assert lifecycle.retry_crawl(session, user, job) == 2
    assert (job.status, job.error_message, job.completed_at, job.active_chunks) == (JobStatus.RUNNING, None, None, 2)
    session.commit()
    assert lifecycle.retry_crawl(session, user, job) == 0
    assert _rows(session) == [("crawl_job.retried", "crawl_job", str(job.id), user)]
    assert queued(aws, "dispatch") == [{"crawl_job_id": job.id, "retry": True}]


def test_racing_callers_end_a_job_once(session: Session, wide_pool: None) -> None:
    """CALLERS workers, half completing and half failing the same running job at the same moment: one wins."""
    job_id = _export(session, JobStatus.RUNNING).id
    session.commit()
    barrier = threading.Barrier(CALLERS)

    def end(index: int) -> bool:
        with Session(db.get_engine()) as own:
            row = own.get_one(ExportJob, job_id)
            barrier.wait()
            moved = _complete(own, row) if index % 2 else _fail(own, row)
            own.commit()
            return moved

    with ThreadPoolExecutor(CALLERS) as pool:
        outcomes = list(pool.map(end, range(CALLERS)))
    assert outcomes.count(True) == 1
    job = session.get_one(ExportJob, job_id)
    session.refresh(job)
    rows = _rows(session)
    assert len(rows) == 1 and rows[0][0] == f"export_job.{job.status.value}"


def test_workers_record_every_outcome_under_the_scheme(session: Session, aws: dict[str, Any], wide_pool: None) -> None:
    """Outcomes the workers used to name otherwise (`export.failed`) or not record at all (a crawl job with
    nothing to crawl) are recorded like every other."""
    nothing = factories.crawl_job(session, status=JobStatus.PENDING, providers=["urls"], urls=None)
    empty = _export(session, JobStatus.PENDING)
    session.commit()
    planning.dispatch(DispatchMessage(crawl_job_id=nothing.id))
    clock = export_worker.Clock(owner="test", remaining_ms=lambda: 600_000, reserve_ms=0)
    assert export_worker.run(empty.id, clock) is export_worker.Outcome.SKIPPED
    actions = Counter(action for action, *_ in _rows(session))
    assert actions == {"crawl_job.failed": 1, "export_job.failed": 1}
    assert session.get_one(CrawlJob, nothing.id).error_message == "nothing to crawl"


def test_a_redelivered_failed_validation_is_recorded_as_retried(
    session: Session, aws: dict[str, Any], wide_pool: None
) -> None:
    job = _validation(session, JobStatus.FAILED)
    job.error_message = "batch 0 failed after 5 attempts"
    session.commit()
    validation_worker.plan(job.id)
    session.expire_all()
    assert session.get_one(ValidationJob, job.id).status is JobStatus.COMPLETED
    assert [action for action, *_ in _rows(session)] == ["validation_job.retried", "validation_job.completed"]
