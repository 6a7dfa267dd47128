"""Dispatch under the one last-delivery rule: a dispatch that keeps failing fails its job readably on the
last delivery the queue allows, instead of leaving it waiting while the message sits in the dead-letter queue."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pixcrawler.messages import DispatchMessage
from pixcrawler.models import ActivityLog, JobStatus
from pixcrawler.settings import get_settings
from pixcrawler_local.httphost import HttpHost
from tests.crawl.conftest import Apps, serve_jpegs
from tests.crawl.test_pipeline import fresh, new_job
from tests.events import lambda_context, sqs_event, sqs_record


def test_a_dispatch_failing_on_its_last_delivery_fails_the_job_readably(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = new_job(session, urls=serve_jpegs(host, 3))
    monkeypatch.setenv("CRAWL_QUEUE_URL", crawl_env["queues"]["crawl"] + "-gone")
    get_settings.cache_clear()
    limit = get_settings().max_receive_count

    def deliver(receive_count: int) -> dict[str, Any]:
        record = sqs_record(DispatchMessage(crawl_job_id=job.id), receive_count=receive_count, queue="dispatch")
        response: dict[str, Any] = apps.dispatch.lambda_handler(sqs_event(record), lambda_context("dispatch"))
        return response

    assert len(deliver(limit - 1)["batchItemFailures"]) == 1
    assert fresh(session, job.id).status is not JobStatus.FAILED

    assert deliver(limit) == {"batchItemFailures": []}
    failed = fresh(session, job.id)
    assert failed.status is JobStatus.FAILED and failed.completed_at is not None
    assert (failed.error_message or "").startswith(f"dispatch failed after {limit} attempts: ")
    assert "NonExistentQueue" in (failed.error_message or "")
    logged = session.scalars(select(ActivityLog.resource_id).where(ActivityLog.action == "crawl_job.failed")).all()
    assert logged == [str(job.id)]
