"""State changes happen once: concurrent requests against PostgreSQL, each in its own "Lambda environment".

Every caller runs the API handler on its own thread with its own resolver (a fresh copy of `pixcrawler.api.app`,
as a separate Lambda environment would load) and its own pooled connection; a barrier releases them together.
A second way to race is deterministic: another transaction holds the row (as a worker or another request would,
mid-commit), the request is started, and the holder commits only once the request waits on its lock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

import pixcrawler.api.app
from pixcrawler import db
from pixcrawler.crawl import planning
from pixcrawler.crawl.accounting import fail_chunk
from pixcrawler.messages import DispatchMessage
from pixcrawler.models import ActivityLog, CrawlChunk, CrawlJob, ExportJob, Image, JobStatus, Project, ProjectStatus
from pixcrawler.settings import get_settings
from pixcrawler_local.functions import load_module
from tests import events, factories
from tests.api.conftest import CALLERS, Call, Reply, queued

API_APP = Path(pixcrawler.api.app.__file__)
Together = Callable[..., list[Reply]]
Held = Callable[..., Reply]


def _environment() -> Callable[[dict[str, Any]], Reply]:
    """A freshly loaded API module: its own resolver, as in a Lambda environment of its own."""
    module = load_module(API_APP, "api_app")

    def invoke(event: dict[str, Any]) -> Reply:
        response = module.handle(event, events.lambda_context("api"))
        return Reply(response["statusCode"], response.get("headers") or {}, response.get("body") or "")

    return invoke


@pytest.fixture
def together(api: Call, session: Session, wide_pool: None) -> Together:
    """`together(method, path, **kwargs)`: CALLERS identical requests released at once; their replies."""

    def run(method: str, path: str, **kwargs: Any) -> list[Reply]:
        session.commit()
        environments = [_environment() for _ in range(CALLERS)]
        barrier = threading.Barrier(CALLERS)

        def call(invoke: Callable[[dict[str, Any]], Reply]) -> Reply:
            event = events.http_event(method, path, **kwargs)
            barrier.wait()
            return invoke(event)

        with ThreadPoolExecutor(CALLERS) as pool:
            replies = list(pool.map(call, environments))
        session.expire_all()
        return replies

    return run


WAITING = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")


def _someone_waits_for_a_lock(call: Future[Reply]) -> bool:
    with db.get_engine().connect() as connection:
        return bool(connection.scalar(WAITING)) or call.done()


@pytest.fixture
def while_held(api: Call, session: Session, wide_pool: None) -> Held:
    """`while_held(hold, method, path, **kwargs)`: `hold(other)` changes rows in another transaction and keeps
    them locked; the request starts, and `other` commits once the request waits for it (or has answered)."""

    def run(hold: Callable[[Session], object], method: str, path: str, **kwargs: Any) -> Reply:
        session.commit()
        invoke = _environment()
        with Session(db.get_engine()) as other, ThreadPoolExecutor(1) as pool:
            hold(other)
            call = pool.submit(invoke, events.http_event(method, path, **kwargs))
            for _ in range(3000):  # a safety net against a hang, not a timing assertion
                if _someone_waits_for_a_lock(call):
                    break
                time.sleep(0.01)
            other.commit()
            reply = call.result()
        session.expire_all()
        return reply

    return run


def _statuses(replies: list[Reply]) -> Counter[int]:
    return Counter(reply.status for reply in replies)


def _actions(session: Session) -> Counter[str]:
    return Counter(session.scalars(select(ActivityLog.action)))


def _running_job(session: Session, user: uuid.UUID, **fields: Any) -> CrawlJob:
    project = factories.project(session, factories.profile(session, id=user))
    return factories.crawl_job(session, project, status=JobStatus.RUNNING, **fields)


def test_concurrent_cancels_cancel_once(
    together: Together, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job_id = _running_job(session, alice).id
    replies = together("POST", f"/v1/crawl-jobs/{job_id}/cancel", user=alice)
    assert _statuses(replies) == {200: 1, 409: CALLERS - 1}
    assert all("already cancelled" in reply.error["message"] for reply in replies if reply.status == 409)
    assert _actions(session) == {"crawl_job.cancelled": 1}
    assert session.get_one(CrawlJob, job_id).status is JobStatus.CANCELLED


def test_cancel_loses_to_the_chunk_that_ends_the_job(
    while_held: Held, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job = _running_job(session, alice, total_chunks=1, active_chunks=1)
    chunk = CrawlChunk(crawl_job_id=job.id, chunk_index=0, keyword="cat", provider="urls", status=JobStatus.RUNNING)
    session.add(chunk)
    session.flush()
    job_id, chunk_id = job.id, chunk.id

    last_chunk_fails = partial(fail_chunk, job_id=job_id, chunk_id=chunk_id, error="boom")
    reply = while_held(last_chunk_fails, "POST", f"/v1/crawl-jobs/{job_id}/cancel", user=alice)
    assert reply.status == 409
    assert "already failed" in reply.error["message"]
    assert session.get_one(CrawlJob, job_id).status is JobStatus.FAILED
    assert _actions(session) == {"crawl_job.failed": 1}


def _failed_job(session: Session, user: uuid.UUID) -> tuple[int, list[int]]:
    """A finished job whose chunks 0-2 completed and 3-4 failed on their last attempt."""
    job = _running_job(session, user, total_chunks=5, completed_chunks=3, failed_chunks=2, progress=100)
    job.status = JobStatus.FAILED
    chunks = [
        CrawlChunk(
            crawl_job_id=job.id,
            chunk_index=index,
            keyword="cat",
            provider="urls",
            status=JobStatus.COMPLETED if index < 3 else JobStatus.FAILED,
            attempts=1 if index < 3 else 3,
        )
        for index in range(5)
    ]
    session.add_all(chunks)
    session.flush()
    return job.id, [chunk.id for chunk in chunks[3:]]


def test_concurrent_retries_retry_once(
    together: Together, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job_id, failed = _failed_job(session, alice)
    replies = together("POST", f"/v1/crawl-jobs/{job_id}/retry", user=alice)
    assert _statuses(replies) == {202: 1, 409: CALLERS - 1}
    assert all("no failed chunks" in reply.error["message"] for reply in replies if reply.status == 409)
    assert _actions(session) == {"crawl_job.retried": 1}
    job = session.get_one(CrawlJob, job_id)
    assert (job.status, job.failed_chunks, job.active_chunks, job.completed_at) == (JobStatus.RUNNING, 0, 2, None)

    messages = queued(aws, "dispatch")
    assert messages == [{"crawl_job_id": job_id, "retry": True}]
    planning.dispatch(DispatchMessage.model_validate(messages[0]))
    assert sorted(message["chunk_id"] for message in queued(aws, "crawl")) == failed


def test_retry_that_cannot_be_queued_changes_nothing(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, failed = _failed_job(session, alice)
    monkeypatch.setenv("DISPATCH_QUEUE_URL", aws["queues"]["dispatch"] + "-missing")
    get_settings.cache_clear()
    reply = api("POST", f"/v1/crawl-jobs/{job_id}/retry", user=alice)
    assert reply.status == 503
    job = session.get_one(CrawlJob, job_id)
    assert (job.status, job.failed_chunks, job.active_chunks) == (JobStatus.FAILED, 2, 0)
    assert session.scalars(select(CrawlChunk.id).where(CrawlChunk.status == JobStatus.FAILED)).all() == failed
    assert _actions(session) == {}


def test_concurrent_project_deletes_delete_once(
    together: Together, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    for seed in range(3):
        factories.stored_image(session, aws["s3"], aws["bucket"], job, seed=seed)
    project_id = job.project_id
    replies = together("DELETE", f"/v1/projects/{project_id}", user=alice)
    assert _statuses(replies) == {204: 1, 404: CALLERS - 1}
    assert _actions(session) == {"project.deleted": 1}
    entry = session.scalars(select(ActivityLog)).one()
    assert entry.metadata_["objects_removed"] == 3
    assert aws["s3"].list_objects_v2(Bucket=aws["bucket"]).get("KeyCount") == 0
    assert session.get(Project, project_id) is None


def test_concurrent_image_deletes_delete_once(
    together: Together, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    project = factories.project(session, factories.profile(session, id=alice))
    job = factories.crawl_job(session, project, downloaded_images=2, valid_images=2)
    doomed, kept = (
        factories.stored_image(session, aws["s3"], aws["bucket"], job, seed=seed, is_valid=True) for seed in range(2)
    )
    doomed_id, kept_key, job_id = doomed.id, kept.storage_url, job.id
    replies = together("DELETE", f"/v1/images/{doomed_id}", user=alice)
    assert _statuses(replies) == {204: 1, 404: CALLERS - 1}
    assert _actions(session) == {"image.deleted": 1}
    job = session.get_one(CrawlJob, job_id)
    assert (job.downloaded_images, job.valid_images) == (1, 1)
    keys = [item["Key"] for item in aws["s3"].list_objects_v2(Bucket=aws["bucket"])["Contents"]]
    assert keys == [kept_key]
    assert session.scalars(select(Image.storage_url)).all() == [kept_key]


def test_concurrent_identical_patches_log_one_change(together: Together, session: Session, alice: uuid.UUID) -> None:
    project_id = factories.project(session, factories.profile(session, id=alice)).id
    replies = together("PATCH", f"/v1/projects/{project_id}", user=alice, body={"status": "archived"})
    assert _statuses(replies) == {200: CALLERS}
    assert {reply.json["status"] for reply in replies} == {"archived"}
    assert _actions(session) == {"project.updated": 1}

    profile_replies = together("PATCH", "/v1/me", user=alice, body={"full_name": "Alice"})
    assert _statuses(profile_replies) == {200: CALLERS}
    assert _actions(session) == {"project.updated": 1, "profile.updated": 1}


def _delete_project(project_id: int) -> Callable[[Session], object]:
    return lambda other: other.execute(delete(Project).where(Project.id == project_id))


def test_patch_racing_a_delete_is_404(while_held: Held, session: Session, alice: uuid.UUID) -> None:
    project_id = factories.project(session, factories.profile(session, id=alice)).id
    path = f"/v1/projects/{project_id}"
    reply = while_held(_delete_project(project_id), "PATCH", path, user=alice, body={"name": "x"})
    assert reply.status == 404
    assert _actions(session) == {}


def test_link_racing_a_delete_is_404(while_held: Held, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    export = ExportJob(
        crawl_job=job, user_id=alice, name="e", format="zip", status=JobStatus.COMPLETED, storage_key="exports/1/e.zip"
    )
    session.add(export)
    session.flush()
    export_id, project_id = export.id, job.project_id
    reply = while_held(_delete_project(project_id), "POST", f"/v1/export-jobs/{export_id}/download-url", user=alice)
    assert reply.status == 404
    assert _actions(session) == {}


def test_crawl_start_racing_an_archive_is_409(
    while_held: Held, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    project_id = factories.project(session, factories.profile(session, id=alice)).id
    archive = update(Project).where(Project.id == project_id).values(status=ProjectStatus.ARCHIVED)
    body = {"name": "cats", "keywords": ["cat"], "max_images": 5}
    reply = while_held(
        lambda other: other.execute(archive), "POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=body
    )
    assert reply.status == 409
    assert "archived" in reply.error["message"]
    assert session.scalar(select(func.count()).select_from(CrawlJob)) == 0
    assert queued(aws, "dispatch") == []


def test_export_start_racing_a_retry_is_409(
    while_held: Held, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job_id, _ = _failed_job(session, alice)
    restart = update(CrawlJob).where(CrawlJob.id == job_id).values(status=JobStatus.RUNNING)
    body = {"name": "e", "format": "zip"}
    reply = while_held(
        lambda other: other.execute(restart), "POST", f"/v1/crawl-jobs/{job_id}/export-jobs", user=alice, body=body
    )
    assert reply.status == 409
    assert "still running" in reply.error["message"]
    assert session.scalar(select(func.count()).select_from(ExportJob)) == 0
    assert queued(aws, "export") == []
