"""Dispatch and crawl handlers end to end: real PostgreSQL, moto S3/SQS, loopback image hosts and provider APIs."""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from pixcrawler import db, object_keys
from pixcrawler.crawl import worker
from pixcrawler.crawl.accounting import ChunkEnd
from pixcrawler.crawl.download import Downloader
from pixcrawler.messages import ChunkMessage, DispatchMessage
from pixcrawler.models import ActivityLog, CrawlChunk, CrawlJob, Image, JobStatus
from pixcrawler.services import crawl_jobs
from pixcrawler.services.errors import Conflict
from pixcrawler.settings import get_settings
from pixcrawler_local import samples
from pixcrawler_local.httphost import HttpHost, Response
from tests import factories
from tests.crawl.conftest import (
    Apps,
    HostileHost,
    bucket_keys,
    drain,
    fixture_json,
    lambda_record,
    load_function,
    objects_of,
    queued,
    serve_jpegs,
)
from tests.events import lambda_context, sqs_event, sqs_record


def new_job(session: Session, **fields: Any) -> CrawlJob:
    job = factories.crawl_job(session, **{"status": JobStatus.PENDING, **fields})
    session.commit()
    return job


def dispatch(app: ModuleType, job_id: int, *, retry: bool = False) -> dict[str, Any]:
    record = sqs_record(DispatchMessage(crawl_job_id=job_id, retry=retry), queue="dispatch")
    return app.lambda_handler(sqs_event(record), lambda_context("dispatch"))


def fresh(session: Session, job_id: int) -> CrawlJob:
    session.expire_all()
    return session.get_one(CrawlJob, job_id)


def chunks(session: Session, job_id: int) -> list[CrawlChunk]:
    session.expire_all()
    return list(session.scalars(select(CrawlChunk).where(CrawlChunk.crawl_job_id == job_id).order_by("chunk_index")))


def images(session: Session, job_id: int) -> list[Image]:
    return list(session.scalars(select(Image).where(Image.crawl_job_id == job_id).order_by(Image.sha256)))


def snapshot(session: Session, aws: dict[str, Any], job_id: int) -> dict[str, Any]:
    """Everything exactly-once is about: rows, objects and counters."""
    job = fresh(session, job_id)
    return {
        "images": [(i.sha256, i.storage_url, i.original_url, i.width, i.file_size) for i in images(session, job_id)],
        "objects": bucket_keys(aws),
        "counters": (job.status, job.downloaded_images, job.total_images, job.completed_chunks, job.failed_chunks),
        "refused": job.refused,
        "active": job.active_chunks,
        "chunks": [(c.status, c.found, c.downloaded, c.skipped, c.failed, c.refused) for c in chunks(session, job_id)],
    }


def chunk_event(job_id: int, chunk_id: int, receive_count: int = 1) -> dict[str, Any]:
    return sqs_event(sqs_record(ChunkMessage(crawl_job_id=job_id, chunk_id=chunk_id), receive_count=receive_count))


def test_url_job_runs_end_to_end(crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps) -> None:
    urls = serve_jpegs(host, 9)
    host.routes["/broken.jpg"] = Response(b"<html>nope</html>", headers={"Content-Type": "image/jpeg"})
    job = new_job(session, urls=[*urls, host.url("/broken.jpg")], keywords=["Red Cats"], max_images=50)

    assert dispatch(apps.dispatch, job.id) == {"batchItemFailures": []}
    planned = fresh(session, job.id)
    assert (planned.status, planned.total_chunks, planned.active_chunks) == (JobStatus.RUNNING, 3, 3)
    assert planned.started_at is not None and planned.queued_chunks == 3
    assert [len(c.urls or []) for c in chunks(session, job.id)] == [4, 4, 2]
    assert queued(crawl_env) == 3

    drain(crawl_env, apps.crawl)
    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.total_images, done.progress) == (JobStatus.COMPLETED, 9, 10, 100)
    assert (done.completed_chunks, done.failed_chunks, done.active_chunks) == (3, 0, 0)
    assert done.completed_at is not None and done.error_message is None
    rows = images(session, job.id)
    assert len(rows) == 9
    row = next(r for r in rows if r.original_url == urls[0])
    assert (row.width, row.height, row.format, row.keyword, row.provider) == (64, 48, "jpeg", "Red Cats", "urls")
    assert row.storage_url == f"projects/{job.project_id}/crawl-jobs/{job.id}/red-cats/{row.sha256}.jpg"
    stored = crawl_env["s3"].get_object(Bucket=crawl_env["bucket"], Key=row.storage_url)
    assert stored["ContentType"] == "image/jpeg" and stored["ContentLength"] == row.file_size
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == row.sha256
    # 64x48 JPEGs of a few hundred bytes: each original is its own thumbnail, stored once
    assert (row.decodable, row.decode_error, row.mode, row.thumbnail_format) == (True, None, "RGB", "original")
    assert row.phash is not None and row.blank_variance is not None and row.blank_variance > 0
    assert object_keys.thumbnail_key(row.storage_url, "original") == row.storage_url
    assert bucket_keys(crawl_env) == objects_of(rows) == sorted(r.storage_url for r in rows)
    assert chunks(session, job.id)[2].failed == 1
    log = session.scalars(select(ActivityLog)).one()
    assert (log.action, log.resource_id, log.user_id) == ("crawl_job.completed", str(job.id), job.project.user_id)
    assert queued(crawl_env) == 0


def test_chunks_never_read_the_jobs_url_list(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    """A 100,000-URL job would otherwise ship its whole list to every chunk, several times."""
    job = new_job(session, urls=serve_jpegs(host, 6))
    dispatch(apps.dispatch, job.id)
    statements: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.get_engine(), "before_cursor_execute", record)
    try:
        drain(crawl_env, apps.crawl)
    finally:
        event.remove(db.get_engine(), "before_cursor_execute", record)
    assert fresh(session, job.id).downloaded_images == 6
    assert any("crawl_jobs" in statement for statement in statements)
    assert not [statement for statement in statements if "crawl_jobs.urls" in statement]


def test_dispatch_is_idempotent(crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps) -> None:
    job = new_job(session, urls=serve_jpegs(host, 6))
    dispatch(apps.dispatch, job.id)
    dispatch(apps.dispatch, job.id)
    assert len(chunks(session, job.id)) == 2
    assert queued(crawl_env) == 2
    assert fresh(session, job.id).total_chunks == 2


def test_dispatch_that_died_before_sending_is_completed_by_its_redelivery(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixcrawler import queues

    job = new_job(session, urls=serve_jpegs(host, 6))

    working = queues.send_batch

    def down(*args: Any) -> list[str]:
        raise queues.QueueSendError("SQS is down")

    monkeypatch.setattr(queues, "send_batch", down)
    response = dispatch(apps.dispatch, job.id)
    assert len(response["batchItemFailures"]) == 1
    assert queued(crawl_env) == 0 and len(chunks(session, job.id)) == 2
    monkeypatch.setattr(queues, "send_batch", working)
    dispatch(apps.dispatch, job.id)
    assert queued(crawl_env) == 2 and len(chunks(session, job.id)) == 2


def test_a_plan_of_more_chunks_than_one_statement_carries_is_stored_whole(
    crawl_env: dict[str, Any], session: Session, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """11,000 chunks of six parameters each pass PostgreSQL's 65,535 per statement (a 1,100,000-URL job at
    the default 100 URLs a chunk); SQS is down so the plan is all that happens."""
    from pixcrawler import queues

    monkeypatch.setenv("CRAWL_URLS_PER_CHUNK", "1")
    get_settings.cache_clear()
    job = new_job(session, urls=[f"https://img.test/{n}.jpg" for n in range(11_000)], max_images=11_000)

    def down(*args: Any) -> list[str]:
        raise queues.QueueSendError("SQS is down")

    monkeypatch.setattr(queues, "send_batch", down)
    assert len(dispatch(apps.dispatch, job.id)["batchItemFailures"]) == 1

    planned = chunks(session, job.id)
    assert [chunk.chunk_index for chunk in planned] == list(range(11_000))
    assert planned[-1].urls == ["https://img.test/10999.jpg"]
    assert fresh(session, job.id).total_chunks == 11_000


def test_search_providers_are_planned_by_keyword_and_page(
    crawl_env: dict[str, Any], session: Session, apps: Apps
) -> None:
    job = new_job(session, keywords=["cat", "dog"], providers=["openverse", "wikimedia"], max_images=30)
    dispatch(apps.dispatch, job.id)
    plan = [(c.keyword, c.provider, c.page) for c in chunks(session, job.id)]
    # 30 images x 1.25 headroom over 4 keyword/provider pairs = 10 each = 3 pages of 4
    assert len(plan) == 12 and plan[:3] == [("cat", "openverse", 1), ("cat", "openverse", 2), ("cat", "openverse", 3)]


def test_a_url_list_is_cut_in_order_after_the_search_pages(
    crawl_env: dict[str, Any], session: Session, apps: Apps
) -> None:
    """PostgreSQL cuts the list where it is stored: the slices follow the search providers' pages, each holding
    the next URLs of the list in the order they were given (4 a chunk here), the last one the remainder."""
    urls = [f"https://img.test/{n}.jpg" for n in (7, 3, 9, 0, 5, 1, 8, 2, 6, 4)]  # not in sorted order
    job = new_job(session, keywords=["cat"], providers=["openverse", "urls"], urls=urls, max_images=3)
    dispatch(apps.dispatch, job.id)
    planned = chunks(session, job.id)
    assert [(chunk.chunk_index, chunk.provider, chunk.page, chunk.urls) for chunk in planned] == [
        (0, "openverse", 1, None),
        (1, "urls", 1, urls[0:4]),
        (2, "urls", 1, urls[4:8]),
        (3, "urls", 1, urls[8:10]),
    ]
    assert {chunk.keyword for chunk in planned} == {"cat"}
    assert fresh(session, job.id).total_chunks == 4 and queued(crawl_env) == 4


def test_redelivered_chunk_message_changes_nothing(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    job = new_job(session, urls=serve_jpegs(host, 4))
    dispatch(apps.dispatch, job.id)
    chunk = chunks(session, job.id)[0]
    apps.crawl.lambda_handler(chunk_event(job.id, chunk.id), lambda_context())
    once = snapshot(session, crawl_env, job.id)
    requests = len(host.requests)
    assert apps.crawl.lambda_handler(chunk_event(job.id, chunk.id, 2), lambda_context()) == {"batchItemFailures": []}
    assert snapshot(session, crawl_env, job.id) == once
    assert len(host.requests) == requests
    assert once["counters"] == (JobStatus.COMPLETED, 4, 4, 1, 0)


def crash_each_chunks_first_commit(monkeypatch: pytest.MonkeyPatch, then: Callable[[], object] = list) -> list[int]:
    """Each chunk's first commit dies as a killed worker would, after its uploads (calling `then` first);
    returns the ids of the chunks that crashed."""
    real_complete = worker.complete_chunk
    crashes: list[int] = []

    def crash_once(session_: Session, job_id: int, chunk_id: int, result: Any, deferrals: int | None) -> ChunkEnd:
        if chunk_id not in crashes:
            crashes.append(chunk_id)
            then()
            raise ConnectionResetError("worker killed after uploading")
        return real_complete(session_, job_id, chunk_id, result, deferrals)

    monkeypatch.setattr(worker, "complete_chunk", crash_once)
    return crashes


def test_each_image_is_stored_with_the_facts_of_one_decode_and_an_undecodable_one_is_kept_saying_so(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    """Validation judges these facts instead of decoding again: the planted cases must carry what it needs."""
    upright = PILImage.open(io.BytesIO(samples.jpeg(1, 1024, 768)))
    exif = PILImage.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    planted = {
        "photo.jpg": samples.jpeg(0, 1024, 768),
        "rotated.jpg": samples.encode(upright, "JPEG", exif=exif.tobytes()),
        "truncated.jpg": samples.jpeg(2, 512, 512)[:4000],
        "blank.png": samples.encode(PILImage.new("RGB", (300, 200), (128, 128, 128)), "PNG"),
        "transparent.png": samples.encode(PILImage.new("RGBA", (400, 300), (200, 30, 30, 90)), "PNG"),
    }
    types = {"jpg": "image/jpeg", "png": "image/png"}
    for name, data in planted.items():
        host.routes[f"/{name}"] = Response(data, headers={"Content-Type": types[name.rsplit(".", 1)[1]]})
    job = new_job(session, urls=[host.url(f"/{name}") for name in planted], max_images=10)
    dispatch(apps.dispatch, job.id)
    drain(crawl_env, apps.crawl)
    rows = {row.original_url.rsplit("/", 1)[1]: row for row in images(session, job.id)}
    assert sorted(rows) == sorted(planted)
    s3, data_bucket = crawl_env["s3"], crawl_env["bucket"]

    def preview(row: Image) -> tuple[int, int]:
        assert row.thumbnail_format is not None
        key = object_keys.thumbnail_key(row.storage_url, row.thumbnail_format)
        with PILImage.open(io.BytesIO(s3.get_object(Bucket=data_bucket, Key=key)["Body"].read())) as opened:
            return opened.size

    photo = rows["photo.jpg"]
    assert (photo.width, photo.height, photo.decodable, photo.orientation, photo.mode) == (1024, 768, True, None, "RGB")
    assert preview(photo) == (256, 192)
    rotated = rows["rotated.jpg"]
    assert (rotated.width, rotated.height, rotated.orientation) == (1024, 768, 6)
    assert preview(rotated) == (192, 256)
    truncated = rows["truncated.jpg"]
    assert (truncated.decodable, truncated.thumbnail_format, truncated.phash) == (False, None, None)
    assert truncated.decode_error is not None and truncated.decode_error["code"] == "undecodable"
    assert rows["blank.png"].blank_variance == 0 and rows["blank.png"].decodable is True
    transparent = rows["transparent.png"]
    assert (transparent.mode, transparent.thumbnail_format) == ("RGBA", "webp")
    key = object_keys.thumbnail_key(transparent.storage_url, "webp")
    with PILImage.open(io.BytesIO(s3.get_object(Bucket=data_bucket, Key=key)["Body"].read())) as kept:
        assert (kept.format, kept.mode, kept.size, kept.getpixel((0, 0))[3]) == ("WEBP", "RGBA", (256, 192), 90)
    assert bucket_keys(crawl_env) == objects_of(list(rows.values()))


def test_crash_between_upload_and_commit_then_redelivery_equals_one_clean_run(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = serve_jpegs(host, 8)
    urls = [good[0], good[0], host.url("/missing.jpg"), *good[1:]]  # a duplicate and a 404 in the first chunk
    clean = new_job(session, urls=urls)
    dispatch(apps.dispatch, clean.id)
    drain(crawl_env, apps.crawl)
    expected = snapshot(session, crawl_env, clean.id)
    assert expected["refused"] == {"duplicate": 1, "http_status": 1}

    crashed = new_job(session, urls=urls, parent=clean.project)
    dispatch(apps.dispatch, crashed.id)
    crashes = crash_each_chunks_first_commit(monkeypatch)
    responses = drain(crawl_env, apps.crawl)
    assert len(responses[0]["batchItemFailures"]) == 3 and len(crashes) == 3

    after = snapshot(session, crawl_env, crashed.id)
    assert after["images"] == [
        (sha, key.replace(f"/crawl-jobs/{clean.id}/", f"/crawl-jobs/{crashed.id}/"), url, w, size)
        for sha, key, url, w, size in expected["images"]
    ]
    assert [k for k in after["objects"] if f"/crawl-jobs/{crashed.id}/" in k] == objects_of(images(session, crashed.id))
    assert (after["counters"], after["refused"], after["active"], after["chunks"]) == (
        expected["counters"],
        expected["refused"],
        expected["active"],
        expected["chunks"],
    )
    assert [c.attempts for c in chunks(session, crashed.id)] == [2, 2, 2]


def test_uploads_of_a_crashed_attempt_that_its_retry_did_not_fetch_are_deleted_when_the_job_ends(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = serve_jpegs(host, 3)
    job = new_job(session, urls=urls)
    dispatch(apps.dispatch, job.id)
    lose_an_image = partial(host.routes.pop, urls[0].removeprefix(host.base_url))  # gone before the redelivery
    crashed = crash_each_chunks_first_commit(monkeypatch, then=lose_an_image)
    drain(crawl_env, apps.crawl)

    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, crashed) == (JobStatus.COMPLETED, 2, [chunks(session, job.id)[0].id])
    assert bucket_keys(crawl_env) == objects_of(images(session, job.id))


def test_two_workers_on_two_chunks_respect_the_cap(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    job = new_job(session, urls=serve_jpegs(host, 8), max_images=5)
    dispatch(apps.dispatch, job.id)
    job_id, (first, second) = job.id, chunks(session, job.id)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(chunk_id: int) -> None:
        try:
            app = load_function("crawl")  # one handler module per worker, as in two Lambda environments
            barrier.wait()
            response = app.lambda_handler(chunk_event(job_id, chunk_id), lambda_context())
            assert response == {"batchItemFailures": []}
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(first.id,)), threading.Thread(target=work, args=(second.id,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    done = fresh(session, job.id)
    rows = images(session, job.id)
    assert len(rows) == done.downloaded_images == 5
    assert (done.status, done.completed_chunks, done.active_chunks, done.total_images) == (JobStatus.COMPLETED, 2, 0, 8)
    assert bucket_keys(crawl_env) == objects_of(rows)
    assert sum(c.downloaded for c in chunks(session, job.id)) == 5
    assert sum(c.skipped for c in chunks(session, job.id)) == 3


def test_a_full_job_skips_remaining_chunks_without_fetching(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    """One chunk an invocation: the chunks claimed after the first one's commit filled the job fetch nothing."""
    job = new_job(session, urls=serve_jpegs(host, 12), max_images=4)
    dispatch(apps.dispatch, job.id)
    drain(crawl_env, apps.crawl, batch_size=1)
    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.completed_chunks) == (JobStatus.COMPLETED, 4, 3)
    assert bucket_keys(crawl_env) == objects_of(images(session, job.id)) and len(images(session, job.id)) == 4
    assert len([path for path in host.requests if path != "/robots.txt"]) == 4  # robots.txt once, then images


def test_overlapped_chunks_of_one_batch_never_store_past_the_cap(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    """A batch's chunks overlap: the next one is claimed before the one before it commits, so it may fetch
    past `max_images`, but never store past it: the commits keep the cap and the extra objects are deleted."""
    job = new_job(session, urls=serve_jpegs(host, 12), max_images=4)
    dispatch(apps.dispatch, job.id)
    drain(crawl_env, apps.crawl)
    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.completed_chunks) == (JobStatus.COMPLETED, 4, 3)
    assert bucket_keys(crawl_env) == objects_of(images(session, job.id)) and len(images(session, job.id)) == 4


def test_a_batchs_next_chunk_downloads_while_the_one_before_it_waits_for_its_last_image(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two chunks in one invocation: the second is claimed and downloads on the threads the first one's slow
    last image leaves idle, and commits before the first does; together they never use more than the
    process's `DOWNLOAD_CONCURRENCY` threads, and both store everything."""
    monkeypatch.setenv("DOWNLOAD_CONCURRENCY", "4")
    get_settings.cache_clear()
    urls = serve_jpegs(host, 8)
    in_flight, most, lock = 0, 0, threading.Lock()

    def counted(response: Response, delay: float) -> Callable[[str], Response]:
        def route(path: str) -> Response:
            nonlocal in_flight, most
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            time.sleep(delay)
            with lock:
                in_flight -= 1
            return response

        return route

    for index, url in enumerate(urls):
        path = url.removeprefix(host.base_url)
        route = host.routes[path]
        assert isinstance(route, Response)
        host.routes[path] = counted(route, 0.4 if index == 3 else 0.05)
    job = new_job(session, urls=urls)
    dispatch(apps.dispatch, job.id)

    [response] = drain(crawl_env, apps.crawl)

    assert response == {"batchItemFailures": []}
    first, second = chunks(session, job.id)
    assert first.started_at < second.started_at < second.completed_at < first.completed_at
    assert (first.downloaded, second.downloaded) == (4, 4)
    assert bucket_keys(crawl_env) == objects_of(images(session, job.id)) and len(images(session, job.id)) == 8
    assert most == 4


def test_duplicate_images_in_one_job_are_stored_once(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    urls = serve_jpegs(host, 3)
    job = new_job(session, urls=[*urls, *urls, urls[0]])
    dispatch(apps.dispatch, job.id)
    drain(crawl_env, apps.crawl)
    done = fresh(session, job.id)
    assert (done.downloaded_images, done.total_images, len(images(session, job.id))) == (3, 7, 3)
    assert sum(c.skipped for c in chunks(session, job.id)) == 4


def test_cancelled_job_dispatches_nothing_and_its_chunks_are_acknowledged(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    cancelled = new_job(session, urls=serve_jpegs(host, 3), status=JobStatus.CANCELLED)
    dispatch(apps.dispatch, cancelled.id)
    assert chunks(session, cancelled.id) == [] and queued(crawl_env) == 0

    job = new_job(session, urls=serve_jpegs(host, 3))
    dispatch(apps.dispatch, job.id)
    session.get_one(CrawlJob, job.id).status = JobStatus.CANCELLED
    session.commit()
    responses = drain(crawl_env, apps.crawl)
    assert responses[0] == {"batchItemFailures": []}
    assert [c.status for c in chunks(session, job.id)] == [JobStatus.CANCELLED]
    assert images(session, job.id) == [] and bucket_keys(crawl_env) == [] and host.requests == []
    assert fresh(session, job.id).status is JobStatus.CANCELLED


def provider_api(host: HttpHost, images_host: HttpHost) -> list[str]:
    """Openverse answers with its recorded page, its image URLs rewritten to the loopback image host."""
    page = fixture_json("openverse_page.json")
    urls = serve_jpegs(images_host, len(page["results"]))
    for result, url in zip(page["results"], urls, strict=True):
        result["url"] = url
    host.routes["/v1/images/"] = Response(json.dumps(page).encode(), headers={"Content-Type": "application/json"})
    return urls


def test_openverse_job_stores_licence_and_provenance(
    crawl_env: dict[str, Any], session: Session, openverse_api: HttpHost, apps: Apps
) -> None:
    with HttpHost() as images_host:
        urls = provider_api(openverse_api, images_host)
        job = new_job(session, providers=["openverse"], max_images=4)
        dispatch(apps.dispatch, job.id)
        drain(crawl_env, apps.crawl, batch_size=1)
    done = fresh(session, job.id)
    # two pages planned (4 x 1.25 headroom); the second, claimed after the first committed, finds the job full
    # and does not search
    assert (done.status, done.downloaded_images, done.total_images, done.completed_chunks) == (
        JobStatus.COMPLETED,
        4,
        4,
        2,
    )
    row = next(r for r in images(session, job.id) if r.original_url == urls[0])
    assert (row.title, row.creator, row.license, row.provider) == ("Cat Fish 2", "admiller", "CC BY 2.0", "openverse")
    assert row.source_url == "https://www.flickr.com/photos/32426194@N00/3481540500"
    assert row.license_url == "https://creativecommons.org/licenses/by/2.0/"


def test_provider_429_retries_later_and_never_counts_failed_while_receives_remain(
    crawl_env: dict[str, Any], session: Session, openverse_api: HttpHost, apps: Apps
) -> None:
    with HttpHost() as images_host:
        provider_api(openverse_api, images_host)
        throttled = {"on": True}
        page = openverse_api.routes["/v1/images/"]

        def images_route(path: str) -> Response:
            return Response(b"{}", 429, {"Retry-After": "0"}) if throttled["on"] else page  # type: ignore[return-value]

        openverse_api.routes["/v1/images/"] = images_route
        job = new_job(session, providers=["openverse"], max_images=3)
        dispatch(apps.dispatch, job.id)
        [chunk] = chunks(session, job.id)
        response = apps.crawl.lambda_handler(chunk_event(job.id, chunk.id, 1), lambda_context())
        assert len(response["batchItemFailures"]) == 1
        assert (chunks(session, job.id)[0].status, fresh(session, job.id).failed_chunks) == (JobStatus.RUNNING, 0)
        throttled["on"] = False
        apps.crawl.lambda_handler(chunk_event(job.id, chunk.id, 2), lambda_context())
    assert fresh(session, job.id).status is JobStatus.COMPLETED


def test_a_real_429_defers_the_message_for_retry_after(
    crawl_env: dict[str, Any], session: Session, openverse_api: HttpHost, apps: Apps
) -> None:
    openverse_api.routes["/v1/images/"] = Response(b"{}", 429, {"Retry-After": "120"})
    job = new_job(session, providers=["openverse"], max_images=3)
    dispatch(apps.dispatch, job.id)
    sqs, url = crawl_env["sqs"], crawl_env["queues"]["crawl"]
    [message] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    response = apps.crawl.lambda_handler({"Records": [lambda_record(message)]}, lambda_context())
    assert len(response["batchItemFailures"]) == 1
    # received with visibility 0, the message is now hidden for Retry-After instead of coming straight back
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert queued(crawl_env) == 1
    assert fresh(session, job.id).failed_chunks == 0


def test_failing_chunk_is_failed_on_its_last_receive_and_retry_resends_only_it(
    crawl_env: dict[str, Any], session: Session, openverse_api: HttpHost, apps: Apps
) -> None:
    with HttpHost() as images_host:
        provider_api(openverse_api, images_host)
        page = openverse_api.routes["/v1/images/"]
        openverse_api.routes["/v1/images/"] = Response(b"oops", 500)
        urls = serve_jpegs(images_host, 4, start=100)
        job = new_job(session, providers=["openverse", "urls"], urls=urls, max_images=8)
        dispatch(apps.dispatch, job.id)
        assert [c.provider for c in chunks(session, job.id)] == ["openverse", "openverse", "openverse", "urls"]

        drain(crawl_env, apps.crawl)
        failed = fresh(session, job.id)
        assert (failed.status, failed.completed_chunks, failed.failed_chunks, failed.active_chunks) == (
            JobStatus.COMPLETED,
            1,
            3,
            0,
        )
        assert [c.status for c in chunks(session, job.id)][:3] == [JobStatus.FAILED] * 3
        assert "HTTP 500" in (chunks(session, job.id)[0].last_error or "")
        assert [c.attempts for c in chunks(session, job.id)] == [3, 3, 3, 1]
        dead_letters = crawl_env["sqs"].get_queue_url(QueueName="crawl-dlq")["QueueUrl"]
        assert queued(crawl_env) == 0
        assert crawl_env["sqs"].receive_message(QueueUrl=dead_letters).get("Messages", []) == []

        openverse_api.routes["/v1/images/"] = page
        owner = failed.project.user_id
        session.commit()
        with db.session_scope() as api_session:
            crawl_jobs.retry(api_session, owner, job.id)
        retried = fresh(session, job.id)
        assert (retried.status, retried.failed_chunks, retried.active_chunks) == (JobStatus.RUNNING, 0, 3)
        assert retried.completed_at is None and retried.error_message is None
        session.commit()
        with pytest.raises(Conflict), db.session_scope() as api_session:
            crawl_jobs.retry(api_session, owner, job.id)
        dispatch(apps.dispatch, job.id, retry=True)
        assert queued(crawl_env) == 3

        drain(crawl_env, apps.crawl)
    done = fresh(session, job.id)
    assert (done.status, done.completed_chunks, done.failed_chunks, done.downloaded_images) == (
        JobStatus.COMPLETED,
        4,
        0,
        8,
    )
    assert done.queued_chunks == 7


def test_job_fails_with_a_reason_when_no_chunk_succeeds(
    crawl_env: dict[str, Any], session: Session, openverse_api: HttpHost, apps: Apps
) -> None:
    openverse_api.routes["/v1/images/"] = Response(b"oops", 502)
    job = new_job(session, providers=["openverse"], max_images=2)
    dispatch(apps.dispatch, job.id)
    [chunk] = chunks(session, job.id)
    apps.crawl.lambda_handler(chunk_event(job.id, chunk.id, 3), lambda_context())
    done = fresh(session, job.id)
    assert done.status is JobStatus.FAILED and "HTTP 502" in (done.error_message or "")
    assert session.scalar(select(func.count()).select_from(ActivityLog).where(ActivityLog.action == "crawl_job.failed"))


def test_one_bad_message_does_not_fail_its_batch(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps
) -> None:
    job = new_job(session, urls=serve_jpegs(host, 3))
    dispatch(apps.dispatch, job.id)
    [chunk] = chunks(session, job.id)
    bad = sqs_record('{"crawl_job_id": "x"}')
    good = sqs_record(ChunkMessage(crawl_job_id=job.id, chunk_id=chunk.id))
    response = apps.crawl.lambda_handler(sqs_event(bad, good), lambda_context())
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert fresh(session, job.id).status is JobStatus.COMPLETED


def test_a_chunk_out_of_time_goes_back_to_the_queue_and_on_its_last_delivery_refuses_its_candidates(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One second left, less than a blocked connect and read plus the commit reserve: nothing may start. The
    chunk is handed back unclaimed, visible again at once, for an invocation with time; on its last allowed
    delivery it runs anyway and ends with its candidates refused instead of being killed."""
    job = new_job(session, urls=serve_jpegs(host, 3))
    dispatch(apps.dispatch, job.id)
    sqs, queue = crawl_env["sqs"], crawl_env["queues"]["crawl"]
    [message] = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"])["Messages"]

    response = apps.crawl.lambda_handler({"Records": [lambda_record(message)]}, lambda_context("crawl", 1000))

    assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    [chunk] = chunks(session, job.id)
    assert (chunk.status, chunk.attempts, host.requests) == (JobStatus.PENDING, 0, [])
    time.sleep(1.1)  # the hand-back hides it for one second, SQS's least
    [again] = sqs.receive_message(QueueUrl=queue, AttributeNames=["All"], WaitTimeSeconds=2)["Messages"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    monkeypatch.setenv("MAX_RECEIVE_COUNT", "2")
    get_settings.cache_clear()

    response = apps.crawl.lambda_handler({"Records": [lambda_record(again)]}, lambda_context("crawl", 1000))

    assert response == {"batchItemFailures": []}
    assert host.requests == [] and bucket_keys(crawl_env) == []
    [chunk] = chunks(session, job.id)
    assert (chunk.status, chunk.found, chunk.failed, chunk.downloaded) == (JobStatus.COMPLETED, 3, 3, 0)
    assert chunk.refused == {"out_of_time": 3}
    done = fresh(session, job.id)
    assert (done.status, done.refused) == (JobStatus.FAILED, {"out_of_time": 3})
    assert done.error_message == "no image could be downloaded from 3 candidates: 3 ran out of time"


def test_sweep_requeues_stuck_chunks(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from pixcrawler.crawl.planning import requeue_stuck

    job = new_job(session, urls=serve_jpegs(host, 6))
    dispatch(apps.dispatch, job.id)
    crawl_env["sqs"].purge_queue(QueueUrl=crawl_env["queues"]["crawl"])
    assert requeue_stuck(timedelta(hours=1)) == 0
    monkeypatch.setenv("CRAWL_STUCK_AFTER_SECONDS", "-1")
    get_settings.cache_clear()
    assert load_function("sweep").lambda_handler({}, lambda_context("sweep")) == {"redispatched": 0, "requeued": 2}
    drain(crawl_env, apps.crawl)
    assert fresh(session, job.id).status is JobStatus.COMPLETED


def test_sweep_redispatches_a_job_whose_dispatch_message_was_lost(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = new_job(session, urls=serve_jpegs(host, 3))
    sweep = load_function("sweep")
    assert sweep.lambda_handler({}, lambda_context("sweep")) == {"redispatched": 0, "requeued": 0}
    monkeypatch.setenv("CRAWL_STUCK_AFTER_SECONDS", "-1")
    get_settings.cache_clear()

    assert sweep.lambda_handler({}, lambda_context("sweep")) == {"redispatched": 1, "requeued": 0}
    assert queued(crawl_env, "dispatch") == 1
    drain(crawl_env, apps.dispatch, queue="dispatch")
    drain(crawl_env, apps.crawl)
    done = fresh(session, lost.id)
    assert (done.status, done.downloaded_images, done.total_chunks) == (JobStatus.COMPLETED, 3, 1)
    assert sweep.lambda_handler({}, lambda_context("sweep")) == {"redispatched": 0, "requeued": 0}


def test_a_commit_that_keeps_failing_ends_failed_without_orphan_objects(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = new_job(session, urls=serve_jpegs(host, 3))
    dispatch(apps.dispatch, job.id)

    def broken(*args: Any) -> ChunkEnd:
        raise ConnectionResetError("database went away")

    monkeypatch.setattr(worker, "complete_chunk", broken)
    drain(crawl_env, apps.crawl)
    [chunk] = chunks(session, job.id)
    assert (chunk.status, chunk.attempts) == (JobStatus.FAILED, 3)
    assert "database went away" in (chunk.last_error or "")
    done = fresh(session, job.id)
    assert (done.status, done.failed_chunks, done.active_chunks) == (JobStatus.FAILED, 1, 0)
    assert images(session, job.id) == [] and bucket_keys(crawl_env) == []


def test_malformed_candidates_are_refused_and_their_chunk_mates_stored(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRAWL_URLS_PER_CHUNK", "20")
    get_settings.cache_clear()
    host.routes["/to-a-bad-port.jpg"] = Response(status=302, headers={"Location": "http://127.0.0.1:99999/"})
    malformed = ["http://x:99999/a.jpg", "http://[::1/x", "http://x:-1/a.jpg", host.url("/to-a-bad-port.jpg")]
    good = serve_jpegs(host, 9)
    job = new_job(session, urls=[*good[:5], *malformed, *good[5:]])
    dispatch(apps.dispatch, job.id)

    assert drain(crawl_env, apps.crawl) == [{"batchItemFailures": []}]
    [chunk] = chunks(session, job.id)
    assert (chunk.status, chunk.downloaded, chunk.failed, chunk.refused) == (
        JobStatus.COMPLETED,
        9,
        4,
        {"malformed_url": 4},
    )
    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.refused) == (JobStatus.COMPLETED, 9, {"malformed_url": 4})
    rows = images(session, job.id)
    assert sorted(row.original_url for row in rows) == sorted(good)
    assert bucket_keys(crawl_env) == objects_of(rows)


def test_an_unexpected_error_in_one_candidate_costs_only_that_candidate(
    crawl_env: dict[str, Any],
    session: Session,
    host: HttpHost,
    apps: Apps,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug met by one URL (here a KeyError nobody raises on purpose) is logged with the URL and counted."""
    good = serve_jpegs(host, 3)
    cursed = host.url("/cursed.jpg")
    real_fetch = Downloader.fetch

    def fetch(self: Downloader, url: str, stop_by: float = math.inf) -> Any:
        if url == cursed:
            raise KeyError("a bug")
        return real_fetch(self, url, stop_by)

    monkeypatch.setattr(Downloader, "fetch", fetch)
    job = new_job(session, urls=[good[0], cursed, *good[1:]])
    dispatch(apps.dispatch, job.id)
    assert drain(crawl_env, apps.crawl) == [{"batchItemFailures": []}]
    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.refused) == (JobStatus.COMPLETED, 3, {"unexpected_error": 1})
    assert bucket_keys(crawl_env) == objects_of(images(session, job.id)) and len(images(session, job.id)) == 3
    [logged] = [record for record in caplog.records if cursed in record.getMessage()]
    assert "unexpected_error" in logged.getMessage() and logged.exc_info is not None


def test_a_chunk_of_hostile_hosts_commits_inside_its_invocation(
    crawl_env: dict[str, Any],
    session: Session,
    host: HttpHost,
    hostile: HostileHost,
    apps: Apps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hosts that trickle headers or bodies for longer than the invocation, next to good ones: the hostile
    fetches end when the chunk's time is up, the good images are stored, and the chunk commits."""
    settings = {
        "DOWNLOAD_TOTAL_TIMEOUT": "30",
        "CRAWL_COMMIT_RESERVE_SECONDS": "3",
        "CRAWL_URLS_PER_CHUNK": "20",
        "CRAWL_MIN_CHUNK_SECONDS": "0",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    good = serve_jpegs(host, 4)
    hostile.target = good[3]
    urls = [*good[:3], *(hostile.url(path) for path in ("/drip.jpg", "/drip-headers.jpg", "/redirect-endless"))]
    job = new_job(session, urls=urls)
    dispatch(apps.dispatch, job.id)
    [message] = crawl_env["sqs"].receive_message(QueueUrl=crawl_env["queues"]["crawl"], AttributeNames=["All"])[
        "Messages"
    ]

    started = time.monotonic()
    response = apps.crawl.lambda_handler({"Records": [lambda_record(message)]}, lambda_context("crawl", 7000))
    assert time.monotonic() - started < 7.0  # the invocation's time; downloads stopped at 2.5 s

    assert response == {"batchItemFailures": []}
    [chunk] = chunks(session, job.id)
    assert (chunk.status, chunk.downloaded, chunk.refused) == (JobStatus.COMPLETED, 4, {"out_of_time": 2})
    rows = images(session, job.id)
    assert sorted(row.original_url for row in rows) == sorted([*good[:3], hostile.url("/redirect-endless")])
    assert bucket_keys(crawl_env) == objects_of(rows)


def test_a_job_that_stored_nothing_says_why(
    crawl_env: dict[str, Any], session: Session, host: HttpHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRAWL_ALLOW_LOOPBACK")
    get_settings.cache_clear()
    urls = [
        *serve_jpegs(host, 4),
        "http://x:99999/a.jpg",
        "http://[::1/x",
        "http://x:-1/a.jpg",
        "http://10.0.0.1/a.jpg",
        "http://192.168.1.1/b.jpg",
    ]
    job = new_job(session, urls=urls)
    dispatch(apps.dispatch, job.id)
    drain(crawl_env, apps.crawl)
    done = fresh(session, job.id)
    assert done.status is JobStatus.FAILED and host.requests == []
    assert done.refused == {"loopback_not_allowed": 4, "malformed_url": 3, "address_not_allowed": 2}
    assert done.error_message == (
        "no image could be downloaded from 9 candidates: "
        "4 address not allowed (loopback; set CRAWL_ALLOW_LOOPBACK=1 or pass --allow-loopback), 3 malformed URL, "
        "2 address not allowed (private, link-local, reserved or otherwise not public)"
    )
    assert sum(chunk.refused.get("loopback_not_allowed", 0) for chunk in chunks(session, job.id)) == 4
