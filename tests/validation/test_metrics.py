"""The validation function's CloudWatch metrics: outcomes per batch and failed jobs, as EMF documents."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler.messages import ValidationMessage
from pixcrawler.models import CrawlJob, Image
from pixcrawler.settings import get_settings
from tests.metrics import enable_metrics, named, printed_metrics
from tests.validation.test_worker import (  # noqa: F401 (fixtures)
    crawl,
    invoke,
    mixed,
    queued,
    reload,
    run,
    validation_job,
)

pytestmark = pytest.mark.usefixtures("worker_connections")


def test_a_completed_validation_prints_its_valid_and_invalid_images(
    session: Session,
    aws: dict[str, Any],
    crawl: CrawlJob,  # noqa: F811
    mixed: dict[str, Image],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    enable_metrics(monkeypatch, "validate")
    job = validation_job(session, crawl, min_width=64)
    run(aws, job)
    done = reload(session, job)
    metrics = printed_metrics(capsys.readouterr().out)
    assert (done.validated_images, done.invalid_images) == (8, 3)
    assert named(metrics, "ImagesValid") == [("ImagesValid", 5.0, {"service": "validate"})]
    assert named(metrics, "ImagesInvalid") == [("ImagesInvalid", 3.0, {"service": "validate"})]


def test_a_validation_job_failed_on_the_last_delivery_prints_jobs_failed(
    session: Session,
    aws: dict[str, Any],
    crawl: CrawlJob,  # noqa: F811
    mixed: dict[str, Image],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = validation_job(session, crawl)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    (batch, *_) = queued(aws)
    monkeypatch.setenv("DATA_BUCKET", "no-such-bucket")
    get_settings.cache_clear()
    enable_metrics(monkeypatch, "validate")
    assert invoke(batch, receive_count=get_settings().max_receive_count) == []
    assert named(printed_metrics(capsys.readouterr().out), "JobsFailed") == [
        ("JobsFailed", 1.0, {"service": "validate", "Kind": "validation"})
    ]
