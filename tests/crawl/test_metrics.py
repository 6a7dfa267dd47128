"""The crawl functions' CloudWatch metrics, as the EMF documents a deployed handler prints."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler_local.httphost import HttpHost, Response
from tests.crawl.conftest import Apps, drain, serve_jpegs
from tests.crawl.test_pipeline import chunks, dispatch, new_job
from tests.metrics import enable_metrics, named, printed_metrics


def test_a_chunk_prints_images_stored_and_refused_by_reason(
    crawl_env: dict[str, Any],
    session: Session,
    host: HttpHost,
    apps: Apps,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host.routes["/broken.jpg"] = Response(b"<html>nope</html>", headers={"Content-Type": "image/jpeg"})
    job = new_job(session, urls=[*serve_jpegs(host, 3), host.url("/broken.jpg")], max_images=50)
    dispatch(apps.dispatch, job.id)
    assert printed_metrics(capsys.readouterr().out) == [], "metrics are off unless enabled, as in the local stack"

    enable_metrics(monkeypatch, "crawl")
    drain(crawl_env, apps.crawl)

    [chunk] = chunks(session, job.id)
    [(reason, count)] = chunk.refused.items()
    metrics = printed_metrics(capsys.readouterr().out)
    assert named(metrics, "ImagesStored") == [("ImagesStored", 3.0, {"service": "crawl"})]
    assert named(metrics, "ImagesRefused") == [("ImagesRefused", 1.0, {"service": "crawl", "Reason": reason})]
    assert count == 1
    [(_, seconds, _)] = named(metrics, "ChunkDuration")
    assert seconds > 0


def test_dispatch_prints_the_chunks_it_queued(
    crawl_env: dict[str, Any],
    session: Session,
    host: HttpHost,
    apps: Apps,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    enable_metrics(monkeypatch, "dispatch")
    job = new_job(session, urls=serve_jpegs(host, 10), max_images=50)
    dispatch(apps.dispatch, job.id)
    queued = len(chunks(session, job.id))
    assert queued > 1
    assert named(printed_metrics(capsys.readouterr().out), "ChunksQueued") == [
        ("ChunksQueued", float(queued), {"service": "dispatch"})
    ]


def test_a_failed_crawl_job_prints_jobs_failed(
    crawl_env: dict[str, Any],
    session: Session,
    host: HttpHost,
    apps: Apps,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host.routes["/broken.jpg"] = Response(b"<html>nope</html>", headers={"Content-Type": "image/jpeg"})
    job = new_job(session, urls=[host.url("/broken.jpg")], max_images=5)
    dispatch(apps.dispatch, job.id)
    enable_metrics(monkeypatch, "crawl")
    drain(crawl_env, apps.crawl)
    assert named(printed_metrics(capsys.readouterr().out), "JobsFailed") == [
        ("JobsFailed", 1.0, {"service": "crawl", "Kind": "crawl"})
    ]
