"""Every route that names a resource answers 404 to anyone but its owner, and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pixcrawler.models import ActivityLog, CrawlChunk, CrawlJob, ExportJob, Image, JobStatus, Project, ValidationJob
from tests import factories
from tests.api.conftest import Call, queued


@pytest.fixture
def owned(session: Session, aws: dict[str, Any], alice: uuid.UUID) -> dict[str, int]:
    project = factories.project(session, factories.profile(session, id=alice))
    job = factories.crawl_job(session, project, failed_chunks=1, total_chunks=2)
    failed = CrawlChunk(crawl_job_id=job.id, chunk_index=0, keyword="cat", provider="urls", status=JobStatus.FAILED)
    running = factories.crawl_job(session, project, status=JobStatus.RUNNING)
    image = factories.stored_image(session, aws["s3"], aws["bucket"], job)
    validation = ValidationJob(crawl_job=job, name="v")
    export = ExportJob(
        crawl_job=job, user_id=alice, name="e", format="zip", status=JobStatus.COMPLETED, storage_key="k"
    )
    session.add_all([failed, validation, export])
    session.flush()
    return {
        "project": project.id,
        "job": job.id,
        "running": running.id,
        "image": image.id,
        "validation": validation.id,
        "export": export.id,
    }


ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/projects/{project}", None),
    ("PATCH", "/v1/projects/{project}", {"name": "mine now"}),
    ("DELETE", "/v1/projects/{project}", None),
    ("POST", "/v1/projects/{project}/crawl-jobs", {"name": "c", "keywords": ["a"], "max_images": 1}),
    ("GET", "/v1/projects/{project}/crawl-jobs", None),
    ("GET", "/v1/crawl-jobs/{job}", None),
    ("POST", "/v1/crawl-jobs/{running}/cancel", None),
    ("POST", "/v1/crawl-jobs/{job}/retry", None),
    ("GET", "/v1/crawl-jobs/{job}/images", None),
    ("GET", "/v1/images/{image}", None),
    ("DELETE", "/v1/images/{image}", None),
    ("POST", "/v1/crawl-jobs/{job}/validation-jobs", {"name": "v"}),
    ("GET", "/v1/crawl-jobs/{job}/validation-jobs", None),
    ("GET", "/v1/validation-jobs/{validation}", None),
    ("POST", "/v1/crawl-jobs/{job}/export-jobs", {"name": "e"}),
    ("GET", "/v1/export-jobs/{export}", None),
    ("POST", "/v1/export-jobs/{export}/download-url", None),
]


def _snapshot(session: Session) -> tuple[int, ...]:
    tables = (Project, CrawlJob, Image, ValidationJob, ExportJob, ActivityLog)
    counts = tuple(session.scalar(select(func.count()).select_from(table)) or 0 for table in tables)
    statuses = tuple(session.scalars(select(CrawlJob.status).order_by(CrawlJob.id)).all())
    return (*counts, len(statuses), *(hash(status) for status in statuses))


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
def test_another_users_resource_is_404(
    api: Call,
    session: Session,
    aws: dict[str, Any],
    owned: dict[str, int],
    alice: uuid.UUID,
    bob: uuid.UUID,
    method: str,
    template: str,
    body: dict[str, Any] | None,
) -> None:
    path = template.format(**owned)
    api("GET", "/v1/me", user=bob)
    before = _snapshot(session)
    reply = api(method, path, user=bob, body=body)
    assert reply.status == 404, reply.text
    assert reply.error["code"] == "not_found"
    assert _snapshot(session) == before
    assert all(not queued(aws, name) for name in ("dispatch", "validation", "export"))
    assert api(method, path, user=alice, body=body).status < 300


def test_lists_show_only_the_callers_own(api: Call, owned: dict[str, int], alice: uuid.UUID, bob: uuid.UUID) -> None:
    api("PATCH", "/v1/me", user=alice, body={"full_name": "Alice"})
    for path in ("/v1/projects", "/v1/export-jobs", "/v1/activity"):
        assert api("GET", path, user=alice).json["items"], path
        assert api("GET", path, user=bob).json == {"items": [], "next_cursor": None}, path
    assert api("GET", "/v1/me", user=bob).json["id"] == str(bob)
