"""A job's row is committed before its message leaves: a worker that receives the message at once (SQS long
polling; the local stack's pollers do it on every run) must find the job, or it drops the message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from pixcrawler import aws as pixcrawler_aws
from pixcrawler.db import build_engine
from pixcrawler.models import CrawlJob, ExportJob, JobStatus, ValidationJob
from tests import factories
from tests.api.conftest import Call

TABLES = {"crawl_job_id": "crawl_jobs", "validation_job_id": "validation_jobs", "export_job_id": "export_jobs"}


@pytest.fixture
def observer(migrated: str) -> Iterator[Engine]:
    """A second connection, as a worker has: it sees only what the API has committed."""
    engine = build_engine(migrated, pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def seen_at_send(aws: dict[str, Any], observer: Engine) -> list[bool]:
    """For every message the layer sends, whether its job row was already visible to another connection."""
    seen: list[bool] = []

    def check(params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["MessageBody"])
        column = next(name for name in TABLES if name in body)
        with observer.connect() as connection:
            found = connection.execute(
                text(f"SELECT count(*) FROM {TABLES[column]} WHERE id = :id"), {"id": body[column]}
            ).scalar_one()
        seen.append(found == 1)

    pixcrawler_aws.sqs().meta.events.register("before-parameter-build.sqs.SendMessage", check)
    return seen


def test_every_job_start_commits_before_it_sends(
    api: Call, session: Session, aws: dict[str, Any], seen_at_send: list[bool], alice: uuid.UUID
) -> None:
    project = api("POST", "/v1/projects", user=alice, body={"name": "p"}).json["id"]
    body = {"name": "c", "keywords": ["cat"], "max_images": 5}
    crawl_id = api("POST", f"/v1/projects/{project}/crawl-jobs", user=alice, body=body).json["id"]
    crawl = session.get(CrawlJob, crawl_id)
    assert crawl is not None
    crawl.status = JobStatus.COMPLETED
    factories.stored_image(session, aws["s3"], aws["bucket"], crawl)
    session.commit()
    validation = api("POST", f"/v1/crawl-jobs/{crawl_id}/validation-jobs", user=alice, body={"name": "v"})
    export = api("POST", f"/v1/crawl-jobs/{crawl_id}/export-jobs", user=alice, body={"name": "e"})
    assert (validation.status, export.status) == (202, 202), (validation.text, export.text)
    assert seen_at_send == [True, True, True]
    assert session.scalar(select(func.count()).select_from(ValidationJob)) == 1
    assert session.scalar(select(func.count()).select_from(ExportJob)) == 1
