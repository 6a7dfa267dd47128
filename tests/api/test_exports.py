"""Export links: issued for finished exports only, never handed out dead, traded for a short presigned URL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pixcrawler import links, object_keys
from pixcrawler.models import ActivityLog, ExportJob, JobStatus
from tests import factories
from tests.api.conftest import Call


def _export(session: Session, aws: dict[str, Any], user: uuid.UUID, **fields: Any) -> ExportJob:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=user)))
    key = object_keys.export_key(job.project_id, 1, "cats.zip")
    aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=b"PK archive")
    defaults: dict[str, Any] = {
        "status": JobStatus.COMPLETED,
        "storage_key": key,
        "export_options": {"link_lifetime_hours": 48},
    }
    export = ExportJob(crawl_job=job, user_id=user, name="e", format="zip", **{**defaults, **fields})
    session.add(export)
    session.flush()
    return export


def test_issue_a_link_and_follow_it(api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    export = _export(session, aws, alice)
    export_id, key = export.id, export.storage_key
    before = datetime.now(UTC)
    reply = api("POST", f"/v1/export-jobs/{export_id}/download-url", user=alice)
    after = datetime.now(UTC)
    assert reply.status == 200
    url, expires_at = reply.json["download_url"], datetime.fromisoformat(reply.json["expires_at"])
    assert url.startswith("https://api.example.com/v1/downloads/")
    lifetime = timedelta(hours=48)  # issued between `before` and `after`, in whole seconds
    assert before + lifetime - timedelta(seconds=1) <= expires_at <= after + lifetime
    row = session.get(ExportJob, export_id)
    assert row is not None and row.download_url == url
    assert session.scalars(select(ActivityLog.action)).all() == ["export_link.issued"]
    assert api("GET", f"/v1/export-jobs/{export_id}", user=alice).json["download_url"] == url

    token = urlsplit(url).path.rsplit("/", 1)[1]
    redirect = api("GET", f"/v1/downloads/{token}")
    assert redirect.status == 302
    location = redirect.headers["Location"]
    assert urlsplit(location).path.endswith(key)  # type: ignore[arg-type]
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-disposition"] == ['attachment; filename="cats.zip"']
    assert requests.get(location, timeout=10).content == b"PK archive"


def test_expired_link_is_reported_not_handed_out(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    export = _export(session, aws, alice, download_url="https://api.example.com/v1/downloads/old", expires_at=past)
    export_id = export.id
    body = api("GET", f"/v1/export-jobs/{export_id}", user=alice).json
    assert body["download_url"] is None and body["link_expired"] is True
    listed = api("GET", "/v1/export-jobs", user=alice).json["items"][0]
    assert listed["download_url"] is None and listed["link_expired"] is True
    fresh = api("POST", f"/v1/export-jobs/{export_id}/download-url", user=alice).json
    assert fresh["download_url"] and fresh["link_expired"] is False


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED])
def test_no_link_for_an_unfinished_export(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID, status: JobStatus
) -> None:
    export_id = _export(session, aws, alice, status=status, storage_key=None).id
    reply = api("POST", f"/v1/export-jobs/{export_id}/download-url", user=alice)
    assert reply.status == 409
    assert session.get(ExportJob, export_id).download_url is None  # type: ignore[union-attr]


def test_download_refusals(api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID) -> None:
    export_id = _export(session, aws, alice).id
    expired = links.sign(export_id, datetime.now(UTC) - timedelta(seconds=1))
    reply = api("GET", f"/v1/downloads/{expired}")
    assert reply.status == 410 and reply.error["code"] == "link_expired"
    forged = links.sign(export_id, datetime.now(UTC) + timedelta(hours=1))[:-3] + "abc"
    assert api("GET", f"/v1/downloads/{forged}").error["status"] == 403
    assert api("GET", "/v1/downloads/nonsense").status == 403
    missing = links.sign(export_id + 1000, datetime.now(UTC) + timedelta(hours=1))
    assert api("GET", f"/v1/downloads/{missing}").error["code"] == "not_found"
    session.get(ExportJob, export_id).status = JobStatus.FAILED  # type: ignore[union-attr]
    valid = links.sign(export_id, datetime.now(UTC) + timedelta(hours=1))
    assert api("GET", f"/v1/downloads/{valid}").status == 404


def _shards(session: Session, aws: dict[str, Any], user: uuid.UUID, **fields: Any) -> ExportJob:
    """A finished WebDataset export of two shards and its classes file, as the worker lists them."""
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=user)))
    folder = object_keys.export_key(job.project_id, 1, "")
    files = []
    for name in ("train-000000.tar", "train-000001.tar", "classes.txt"):
        body = f"bytes of {name}".encode()
        aws["s3"].put_object(Bucket=aws["bucket"], Key=folder + name, Body=body)
        files.append({"name": name, "key": folder + name, "size": len(body), "sha256": "ab" * 32})
    defaults: dict[str, Any] = {
        "status": JobStatus.COMPLETED,
        "storage_key": files[0]["key"],
        "file_size": files[0]["size"],
        "files": files,
        "export_options": {"link_lifetime_hours": 2},
    }
    export = ExportJob(crawl_job=job, user_id=user, name="e", format="webdataset", **{**defaults, **fields})
    session.add(export)
    session.flush()
    return export


def _follow(api: Call, url: str) -> bytes:
    redirect = api("GET", urlsplit(url).path)
    assert redirect.status == 302, redirect.text
    return requests.get(redirect.headers["Location"], timeout=10).content


def test_every_file_gets_its_own_link_refreshed_together(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    export_id = _shards(session, aws, alice).id
    before = api("GET", f"/v1/export-jobs/{export_id}", user=alice).json["files"]
    assert [file["download_url"] for file in before] == [None] * 3

    fresh = api("POST", f"/v1/export-jobs/{export_id}/download-url", user=alice).json

    assert [(file["name"], file["size"], file["sha256"]) for file in fresh["files"]] == [
        (name, len(f"bytes of {name}"), "ab" * 32) for name in ("train-000000.tar", "train-000001.tar", "classes.txt")
    ]
    first = fresh["files"][0]
    assert (fresh["download_url"], fresh["file_size"]) == (first["download_url"], first["size"])
    for file in fresh["files"]:
        assert _follow(api, file["download_url"]) == f"bytes of {file['name']}".encode()
    assert api("GET", f"/v1/export-jobs/{export_id}", user=alice).json["files"] == fresh["files"]


def test_a_link_signed_before_exports_had_several_files_still_downloads_the_first(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    export_id = _shards(session, aws, alice).id
    soon = datetime.now(UTC) + timedelta(hours=1)

    assert _follow(api, f"/v1/downloads/{links.sign(export_id, soon)}") == b"bytes of train-000000.tar"
    assert api("GET", f"/v1/downloads/{links.sign(export_id, soon, file=3)}").error["code"] == "not_found"


def test_expired_links_are_hidden_for_every_file(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    export = _shards(session, aws, alice, download_url="https://api.example.com/v1/downloads/old", expires_at=past)
    session.execute(
        update(ExportJob)
        .where(ExportJob.id == export.id)
        .values(files=[{**file, "download_url": "https://api.example.com/v1/downloads/old"} for file in export.files])
    )

    body = api("GET", f"/v1/export-jobs/{export.id}", user=alice).json

    assert body["link_expired"] is True and [file["download_url"] for file in body["files"]] == [None] * 3


@pytest.mark.parametrize(
    ("options", "field"),
    [({"shard_max_samples": 0}, "shard_max_samples"), ({"shard_max_bytes": 1000}, "shard_max_bytes")],
)
def test_shard_limits_out_of_range_are_refused_by_name(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID, options: dict[str, int], field: str
) -> None:
    job_id = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice))).id
    within = {"shard_max_samples": 1, "shard_max_bytes": 64 * 1024}
    accepted = api(
        "POST",
        f"/v1/crawl-jobs/{job_id}/export-jobs",
        user=alice,
        body={"name": "e", "format": "webdataset", "options": within},
    )
    assert accepted.status == 202, accepted.text

    reply = api(
        "POST",
        f"/v1/crawl-jobs/{job_id}/export-jobs",
        user=alice,
        body={"name": "e", "format": "webdataset", "options": options},
    )

    assert reply.status == 422 and field in json.dumps(reply.error["details"])
    assert session.scalar(select(func.count()).select_from(ExportJob)) == 1


def test_exports_can_be_listed_for_one_crawl_job(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    """A crawl job's page lists only its own exports."""
    project = factories.project(session, factories.profile(session, id=alice))
    jobs = [factories.crawl_job(session, project) for _ in range(2)]
    for job in (jobs[0], jobs[1], jobs[1]):
        session.add(ExportJob(crawl_job=job, user_id=alice, name="e", format="zip", status=JobStatus.PENDING))
    session.flush()
    everything = api("GET", "/v1/export-jobs", user=alice).json["items"]
    assert [item["crawl_job_id"] for item in everything] == [jobs[0].id, jobs[1].id, jobs[1].id]
    second = api("GET", "/v1/export-jobs", user=alice, query={"crawl_job_id": str(jobs[1].id)}).json["items"]
    assert [item["crawl_job_id"] for item in second] == [jobs[1].id, jobs[1].id]
    refused = api("GET", "/v1/export-jobs", user=alice, query={"crawl_job_id": "0"})
    assert refused.status == 422 and refused.error["details"][0]["field"] == "query.crawl_job_id"
