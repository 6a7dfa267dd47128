"""Export links: issued for finished exports only, never handed out dead, traded for a short presigned URL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select
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
