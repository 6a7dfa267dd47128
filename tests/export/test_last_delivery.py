"""Export under the one last-delivery rule: an export whose claim keeps failing (here its upload cannot start)
is retried, then failed readably on the last delivery the queue allows instead of staying pending."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler.messages import ExportMessage
from pixcrawler.models import JobStatus
from pixcrawler.settings import get_settings
from tests.events import lambda_context, sqs_event, sqs_record
from tests.export.conftest import export_job, reload
from tests.export.test_lifecycle import images


def test_an_export_failing_on_its_last_delivery_fails_readably(
    session: Session, env: dict[str, Any], export_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, _ = images(session, env, 2)
    export = export_job(session, job, "zip")
    monkeypatch.setenv("DATA_BUCKET", "no-such-bucket")
    get_settings.cache_clear()
    limit = get_settings().max_receive_count

    def deliver(receive_count: int) -> dict[str, Any]:
        record = sqs_record(ExportMessage(export_job_id=export.id), receive_count=receive_count, queue="export")
        response: dict[str, Any] = export_app.lambda_handler(sqs_event(record), lambda_context("export"))
        return response

    assert len(deliver(1)["batchItemFailures"]) == 1
    assert reload(session, export).status is JobStatus.PENDING

    assert deliver(limit) == {"batchItemFailures": []}
    failed = reload(session, export)
    assert failed.status is JobStatus.FAILED
    assert (failed.error_message or "").startswith(f"export failed after {limit} attempts: ")
    assert "NoSuchBucket" in (failed.error_message or "")
    get_settings.cache_clear()
