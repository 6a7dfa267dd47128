"""Starting, cancelling and retrying work: one row, one queue message, or nothing at all."""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pixcrawler.models import ActivityLog, CrawlChunk, CrawlJob, ExportJob, JobStatus, ValidationJob
from pixcrawler.settings import get_settings
from tests import factories
from tests.api.conftest import Call, queued

CRAWL = {"name": "cats", "keywords": [" cat ", "kitten", "cat"], "max_images": 50}


def _project(api: Call, user: uuid.UUID) -> int:
    return int(api("POST", "/v1/projects", user=user, body={"name": "p"}).json["id"])


def test_start_crawl_job_stores_it_and_queues_dispatch(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    project_id = _project(api, alice)
    reply = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=CRAWL)
    assert reply.status == 202
    job = session.get(CrawlJob, reply.json["id"])
    assert job is not None and job.status == JobStatus.PENDING
    assert job.keywords == ["cat", "kitten"] and job.providers == ["openverse"]
    assert queued(aws, "dispatch") == [{"crawl_job_id": job.id, "retry": False}]
    assert reply.json["chunk_progress"] == 0.0
    listed = api("GET", f"/v1/projects/{project_id}/crawl-jobs", user=alice).json["items"]
    assert [item["id"] for item in listed] == [job.id]
    assert api("GET", f"/v1/projects/{project_id}", user=alice).json["crawl_jobs"][0]["id"] == job.id
    assert "crawl_job.started" in session.scalars(select(ActivityLog.action)).all()


def test_a_crawl_job_reports_its_refusals_by_reason(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    project = factories.project(session, factories.profile(session, id=alice))
    job = factories.crawl_job(session, project, status=JobStatus.FAILED, refused={"timeout": 3, "malformed_url": 1})
    shown = api("GET", f"/v1/crawl-jobs/{job.id}", user=alice).json
    assert shown["refused"] == {"timeout": 3, "malformed_url": 1}
    assert shown["refused_summary"] == "3 timeout, 1 malformed URL"  # in words, as the CLI and the browser show it
    started = api("POST", f"/v1/projects/{project.id}/crawl-jobs", user=alice, body=CRAWL)
    assert started.json["refused"] == {} and started.json["refused_summary"] == ""
    schema = api("GET", "/v1/openapi.json").json["components"]["schemas"]["CrawlJobResponse"]
    assert "`out_of_time` (ran out of time)" in schema["properties"]["refused"]["description"]


def test_url_list_crawl_job(api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    project_id = _project(api, alice)
    body = {"name": "u", "keywords": ["x"], "max_images": 2, "providers": ["urls"], "urls": ["https://a.example/1.jpg"]}
    reply = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=body)
    assert reply.status == 202
    assert session.get(CrawlJob, reply.json["id"]).urls == ["https://a.example/1.jpg"]  # type: ignore[union-attr]
    bad = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body={**body, "providers": ["openverse"]})
    assert bad.status == 422


def test_a_long_url_list_is_stored_stripped_and_leaves_nothing_in_pydantic(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    """pydantic-core caches the short strings it strips, process-wide: 20,000 URLs kept 1.3 MiB for good."""
    project_id = _project(api, alice)
    path = f"/v1/projects/{project_id}/crawl-jobs"
    urls = [f" http://h.example/{index:05d}.jpg\n" for index in range(20_000)]
    body = {"name": "u", "keywords": ["x"], "max_images": len(urls), "providers": ["urls"]}
    assert api("POST", path, user=alice, body={**body, "urls": urls[:1]}).status == 202  # adapters built
    tracemalloc.start()
    try:
        reply = api("POST", path, user=alice, body={**body, "urls": urls})
        gc.collect()
        kept = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*/pydantic*/*")])
    finally:
        tracemalloc.stop()
    assert reply.status == 202
    assert session.get(CrawlJob, reply.json["id"]).urls == [url.strip() for url in urls]  # type: ignore[union-attr]
    assert sum(stat.size for stat in kept.statistics("filename")) < 100_000
    schema = api("GET", "/v1/openapi.json").json["components"]["schemas"]["CrawlJobCreate"]
    assert {"type": "string", "maxLength": 2048, "pattern": r"^https?://\S+$"} in [
        option.get("items") for option in schema["properties"]["urls"]["anyOf"]
    ]


def test_a_crawl_job_may_turn_robots_txt_off_and_reports_its_deferrals(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    project_id = _project(api, alice)
    default = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=CRAWL).json
    off = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body={**CRAWL, "respect_robots": False})
    assert (default["respect_robots"], off.json["respect_robots"], off.json["deferred"]) == (True, False, {})
    assert session.get_one(CrawlJob, off.json["id"]).respect_robots is False
    bad = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body={**CRAWL, "respect_robots": "no"})
    assert (bad.status, [detail["field"] for detail in bad.error["details"]]) == (422, ["respect_robots"])


@pytest.mark.parametrize(
    "body",
    [
        {**CRAWL, "keywords": []},
        {**CRAWL, "keywords": ["  "]},
        {**CRAWL, "keywords": [f"k{n}" for n in range(51)]},
        {**CRAWL, "max_images": 0},
        {**CRAWL, "max_images": 100_001},
        {**CRAWL, "providers": ["google"]},
        {**CRAWL, "name": "x" * 201},
        {**CRAWL, "surprise": 1},
        {**CRAWL, "max_images": "many"},
        {**CRAWL, "respect_robots": "yes"},
        {**CRAWL, "respect_robots": 1},
    ],
)
def test_bad_crawl_requests_are_422_and_store_nothing(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID, body: dict[str, Any]
) -> None:
    project_id = _project(api, alice)
    reply = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=body)
    assert reply.status == 422
    assert reply.error["details"]
    assert session.scalar(select(func.count()).select_from(CrawlJob)) == 0
    assert queued(aws, "dispatch") == []


def test_queue_failure_is_503_and_leaves_nothing(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = _project(api, alice)
    monkeypatch.setenv("DISPATCH_QUEUE_URL", aws["queues"]["dispatch"] + "-missing")
    get_settings.cache_clear()
    reply = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=CRAWL)
    assert reply.status == 503
    assert reply.error["code"] == "unavailable"
    assert session.scalar(select(func.count()).select_from(CrawlJob)) == 0
    assert "crawl_job.started" not in session.scalars(select(ActivityLog.action)).all()


def test_archived_project_refuses_new_crawls(api: Call, alice: uuid.UUID) -> None:
    project_id = _project(api, alice)
    api("PATCH", f"/v1/projects/{project_id}", user=alice, body={"status": "archived"})
    assert api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=CRAWL).status == 409


def test_cancel_then_cancel_again(api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    project_id = _project(api, alice)
    job_id = api("POST", f"/v1/projects/{project_id}/crawl-jobs", user=alice, body=CRAWL).json["id"]
    reply = api("POST", f"/v1/crawl-jobs/{job_id}/cancel", user=alice)
    assert reply.status == 200
    job = session.get(CrawlJob, job_id)
    assert job is not None and job.status == JobStatus.CANCELLED and job.completed_at is not None
    again = api("POST", f"/v1/crawl-jobs/{job_id}/cancel", user=alice)
    assert again.status == 409
    assert "cancelled" in again.error["message"]


def test_retry_needs_failed_chunks(api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    job_id = job.id
    nothing = api("POST", f"/v1/crawl-jobs/{job_id}/retry", user=alice)
    assert nothing.status == 409
    assert "no failed chunks" in nothing.error["message"]
    job.status, job.total_chunks, job.completed_chunks, job.failed_chunks = JobStatus.FAILED, 5, 3, 2
    session.add_all(
        CrawlChunk(crawl_job_id=job_id, chunk_index=index, keyword="cat", provider="urls", status=status, attempts=3)
        for index, status in enumerate([JobStatus.COMPLETED] * 3 + [JobStatus.FAILED] * 2)
    )
    reply = api("POST", f"/v1/crawl-jobs/{job_id}/retry", user=alice)
    assert reply.status == 202
    assert (reply.json["status"], reply.json["failed_chunks"], reply.json["active_chunks"]) == ("running", 0, 2)
    assert reply.json["chunk_progress"] == 0.6
    assert queued(aws, "dispatch") == [{"crawl_job_id": job_id, "retry": True}]
    assert session.scalars(select(ActivityLog.action)).all() == ["crawl_job.retried"]
    assert api("POST", f"/v1/crawl-jobs/{job_id}/retry", user=alice).status == 409


def test_validation_job_needs_images(api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    job_id = job.id
    body = {"name": "v", "rules": {"min_width": 64, "allowed_formats": ["jpeg"], "near_duplicate_threshold": 3}}
    empty = api("POST", f"/v1/crawl-jobs/{job_id}/validation-jobs", user=alice, body=body)
    assert empty.status == 409
    assert "no images" in empty.error["message"]
    factories.stored_image(session, aws["s3"], aws["bucket"], job)
    reply = api("POST", f"/v1/crawl-jobs/{job_id}/validation-jobs", user=alice, body=body)
    assert reply.status == 202
    row = session.get(ValidationJob, reply.json["id"])
    assert row is not None and row.status == JobStatus.PENDING
    assert row.validation_rules["min_width"] == 64 and row.validation_rules["allowed_formats"] == ["jpeg"]
    assert row.validation_rules["exact_duplicates"] == "keep_one"
    assert queued(aws, "validation") == [{"validation_job_id": row.id, "batch": None}]
    assert api("GET", f"/v1/validation-jobs/{row.id}", user=alice).json["name"] == "v"
    listed = api("GET", f"/v1/crawl-jobs/{job_id}/validation-jobs", user=alice).json["items"]
    assert [item["id"] for item in listed] == [row.id]
    bad = api(
        "POST", f"/v1/crawl-jobs/{job_id}/validation-jobs", user=alice, body={"name": "v", "rules": {"min_widht": 1}}
    )
    assert bad.status == 422
    assert bad.error["details"][0]["field"] == "rules.min_widht"


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING])
def test_export_of_an_unfinished_crawl_is_409(api: Call, session: Session, alice: uuid.UUID, status: JobStatus) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)), status=status)
    job_id = job.id
    reply = api("POST", f"/v1/crawl-jobs/{job_id}/export-jobs", user=alice, body={"name": "e"})
    assert reply.status == 409
    assert session.scalar(select(func.count()).select_from(ExportJob)) == 0


def test_start_export_job(api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    job_id = job.id
    body = {"name": "e", "format": "tar.gz", "options": {"layout": "by_keyword", "link_lifetime_hours": 48}}
    reply = api("POST", f"/v1/crawl-jobs/{job_id}/export-jobs", user=alice, body=body)
    assert reply.status == 202
    row = session.get(ExportJob, reply.json["id"])
    assert row is not None and row.user_id == alice and row.format == "tar.gz"
    assert row.export_options == {
        "only_valid": None,
        "include_manifest": True,
        "layout": "by_keyword",
        "link_lifetime_hours": 48,
    }
    assert queued(aws, "export") == [{"export_job_id": row.id}]
    assert [item["id"] for item in api("GET", "/v1/export-jobs", user=alice).json["items"]] == [row.id]
    too_long = {**body, "options": {"link_lifetime_hours": 169}}
    assert api("POST", f"/v1/crawl-jobs/{job_id}/export-jobs", user=alice, body=too_long).status == 422
