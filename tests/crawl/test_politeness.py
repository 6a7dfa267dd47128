"""Politeness against loopback hosts that enforce their own limits and log every request they receive.

Nothing here times the crawler: every assertion is on counts, or on windows computed from the host's own
request log (lower bounds a loaded machine can only make larger), with generous settings.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler import db
from pixcrawler.crawl import hosts, worker
from pixcrawler.models import CrawlJob, HostBudget, JobStatus
from pixcrawler.queues import QueueSendError
from pixcrawler.settings import get_settings
from pixcrawler_local import samples
from pixcrawler_local.httphost import HttpHost, Response
from tests.crawl.conftest import Apps, lambda_record
from tests.crawl.test_pipeline import chunks, dispatch, fresh, images, new_job
from tests.events import lambda_context
from tests.metrics import enable_metrics, named, printed_metrics

SLOW, FAST = "127.0.0.2", "127.0.0.3"


class LimitedHost(HttpHost):
    """An image host on its own loopback address that answers 429 beyond `limit` requests in any one-second
    window (with `Retry-After` when `retry_after` is set), or for its first `refuse_first` requests."""

    def __init__(self, address: str, *, limit: int = 10**6, refuse_first: int = 0, retry_after: str | None = None):
        super().__init__(address)
        self.limit, self.refuse_first, self.retry_after = limit, refuse_first, retry_after
        self.log: list[tuple[float, str, int]] = []
        self._lock = threading.Lock()

    def serve(self, count: int, prefix: str = "/img", start: int = 0) -> list[str]:
        urls = []
        for seed in range(start, start + count):
            path = f"{prefix}/{seed}.jpg"
            self.routes[path] = self._answer
            urls.append(self.url(path))
        return urls

    def _answer(self, path: str) -> Response:
        with self._lock:
            now = time.monotonic()
            recent = sum(1 for at, _, status in self.log if status == 200 and at > now - 1.0)
            images_seen = sum(1 for _, logged, _ in self.log if logged != "/robots.txt")
            status = 429 if images_seen < self.refuse_first or recent >= self.limit else 200
            self.log.append((now, path, status))
        if status == 429:
            return Response(b"slow down", 429, {"Retry-After": self.retry_after} if self.retry_after else {})
        seed = int(path.rsplit("/", 1)[1].split(".")[0])
        return Response(samples.jpeg(seed, 48 + seed % 5, 32), headers={"Content-Type": "image/jpeg"})

    def times(self, status: int | None = None) -> list[float]:
        return [at for at, _, logged in self.log if status is None or logged == status]

    def busiest_second(self) -> int:
        """The most requests the host received in any one-second window (sliding, from its own log)."""
        times = sorted(self.times())
        return max((sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times)), default=0)


@pytest.fixture
def limited(request: pytest.FixtureRequest) -> Iterator[LimitedHost]:
    with LimitedHost(SLOW, **getattr(request, "param", {})) as server:
        yield server


def polite_env(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> None:
    overrides = {"127.0.0.1": {"rate": None, "concurrency": None}, **settings.pop("overrides", {})}
    for name, value in {"CRAWL_HOST_OVERRIDES": json.dumps(overrides), "DB_POOL_SIZE": "8", **settings}.items():
        monkeypatch.setenv(name, str(value))
    get_settings.cache_clear()
    db.reset()


def deliver_until_done(
    aws: dict[str, Any], app: Any, session: Session, job_id: int, *, workers: int = 1, limit: float = 120.0
) -> list[dict[str, Any]]:
    """Run `workers` crawl workers at once, each delivering one message at a time as Lambda would (a failed
    one becomes visible again at once; delayed and hidden ones are waited for), until the job ends."""
    sqs, url = aws["sqs"], aws["queues"]["crawl"]
    responses: list[dict[str, Any]] = []
    stop = time.monotonic() + limit

    def work() -> None:
        while time.monotonic() < stop and not fresh_status(session_factory, job_id).finished:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"], WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                response = app.lambda_handler({"Records": [lambda_record(message)]}, lambda_context("crawl"))
                responses.append(response)
                if response["batchItemFailures"]:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    session_factory = session.get_bind()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def fresh_status(bind: Any, job_id: int) -> JobStatus:
    with Session(bind) as session:
        return session.get_one(CrawlJob, job_id).status


@pytest.mark.parametrize("limited", [{"limit": 22}], indirect=True)
def test_several_workers_never_exceed_the_hosts_rate_and_store_every_image(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 URLs on one host allowing 20 requests per second, four workers at once: the host's own log never
    shows more than 22 (10 %) in any one-second window, it never has to answer 429, and every image is stored."""
    polite_env(monkeypatch, overrides={SLOW: {"rate": 20, "concurrency": 8}}, CRAWL_URLS_PER_CHUNK=50)
    job = new_job(session, urls=limited.serve(300), max_images=300)
    dispatch(apps.dispatch, job.id)

    responses = deliver_until_done(crawl_env, apps.crawl, session, job.id, workers=4)

    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.total_images, done.failed_chunks) == (
        JobStatus.COMPLETED,
        300,
        300,
        0,
    )
    assert len(images(session, job.id)) == 300 and done.refused == {}
    assert all(response == {"batchItemFailures": []} for response in responses)
    assert limited.busiest_second() <= 22, limited.busiest_second()
    assert limited.times(429) == []


@pytest.mark.parametrize("limited", [{"refuse_first": 2, "retry_after": "1"}], indirect=True)
def test_retry_after_pauses_the_host_and_the_images_are_stored_later(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 with `Retry-After: 1`: no request reaches the host for that second, then every image is stored."""
    polite_env(monkeypatch, overrides={SLOW: {"rate": 50, "concurrency": 1}}, CRAWL_URLS_PER_CHUNK=10)
    job = new_job(session, urls=limited.serve(6))
    dispatch(apps.dispatch, job.id)

    deliver_until_done(crawl_env, apps.crawl, session, job.id)

    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.refused, done.failed_chunks) == (JobStatus.COMPLETED, 6, {}, 0)
    refused, served = limited.times(429), limited.times(200)
    assert len(refused) == 2 and len(served) == 6
    assert all(later >= refused[0] + 1.0 for later in limited.times() if later > refused[0])


@pytest.mark.parametrize("limited", [{"refuse_first": 2}], indirect=True)
def test_without_retry_after_the_host_is_backed_off_exponentially_then_recovers(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two 429s without Retry-After: pauses of 1 then 2 seconds, the rate halved twice; the images that follow
    recover it and clear the failures."""
    polite_env(monkeypatch, overrides={SLOW: {"rate": 50, "concurrency": 1}}, CRAWL_URLS_PER_CHUNK=10)
    job = new_job(session, urls=limited.serve(4))
    dispatch(apps.dispatch, job.id)

    deliver_until_done(crawl_env, apps.crawl, session, job.id)

    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.refused) == (JobStatus.COMPLETED, 4, {})
    first, second = limited.times(429)
    assert second >= first + 1.0 and min(limited.times(200)) >= second + 2.0
    budget = session.get_one(HostBudget, SLOW)
    session.refresh(budget)
    assert budget.failures == 0 and budget.rate_factor < 1


@pytest.mark.parametrize("limited", [{"refuse_first": 3, "retry_after": "2"}], indirect=True)
def test_a_long_pause_defers_the_candidates_and_redelivery_counts_each_once(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pause longer than CRAWL_HOST_MAX_WAIT ends the chunk's delivery with its images deferred, not failed;
    the delivery that follows the pause stores them, and nothing is counted twice."""
    polite_env(
        monkeypatch, overrides={SLOW: {"rate": 50, "concurrency": 1}}, CRAWL_URLS_PER_CHUNK=10, CRAWL_HOST_MAX_WAIT=0.5
    )
    job = new_job(session, urls=limited.serve(5))
    dispatch(apps.dispatch, job.id)

    deliver_until_done(crawl_env, apps.crawl, session, job.id)

    done = fresh(session, job.id)
    [chunk] = chunks(session, job.id)
    assert (done.status, done.downloaded_images, done.total_images, done.refused) == (JobStatus.COMPLETED, 5, 5, {})
    assert done.deferred == {"throttled": 15}  # three deliveries each put off all five
    assert (chunk.deferrals, chunk.found, chunk.downloaded, chunk.skipped, chunk.pending) == (3, 5, 5, 0, None)
    assert len(images(session, job.id)) == 5 and len(limited.times(200)) == 5


@pytest.mark.parametrize("limited", [{"refuse_first": 1, "retry_after": "1"}], indirect=True)
def test_a_worker_killed_between_its_deferral_commit_and_its_message_stores_and_counts_each_image_once(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deferral is committed, then the worker dies before queuing the chunk again: the original message
    comes back, works on the kept candidates only, and every count ends as one clean run's."""
    polite_env(
        monkeypatch, overrides={SLOW: {"rate": 50, "concurrency": 1}}, CRAWL_URLS_PER_CHUNK=10, CRAWL_HOST_MAX_WAIT=0.5
    )
    job = new_job(session, urls=limited.serve(5))
    dispatch(apps.dispatch, job.id)
    real_send, killed = worker.queues.send, []

    def killed_once(*args: Any, **kwargs: Any) -> str:
        if not killed:
            killed.append(True)
            raise QueueSendError("worker killed after its deferral commit")
        return real_send(*args, **kwargs)

    monkeypatch.setattr(worker.queues, "send", killed_once)

    responses = deliver_until_done(crawl_env, apps.crawl, session, job.id)

    done = fresh(session, job.id)
    [chunk] = chunks(session, job.id)
    assert killed and responses[0]["batchItemFailures"]
    assert (done.status, done.downloaded_images, done.total_images, done.refused) == (JobStatus.COMPLETED, 5, 5, {})
    assert (chunk.found, chunk.downloaded, chunk.failed, chunk.skipped) == (5, 5, 0, 0)
    assert len(images(session, job.id)) == 5 and len(limited.times(200)) == 5


def test_deferrals_are_printed_as_metrics_by_reason(
    crawl_env: dict[str, Any],
    session: Session,
    limited: LimitedHost,
    apps: Apps,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    polite_env(monkeypatch, overrides={SLOW: {"rate": 0.5, "concurrency": 1}}, CRAWL_HOST_MAX_WAIT=0.5)
    job = new_job(session, urls=limited.serve(3))
    dispatch(apps.dispatch, job.id)
    enable_metrics(monkeypatch, "crawl")
    [message] = crawl_env["sqs"].receive_message(QueueUrl=crawl_env["queues"]["crawl"], AttributeNames=["All"])[
        "Messages"
    ]

    apps.crawl.lambda_handler({"Records": [lambda_record(message)]}, lambda_context("crawl"))

    metrics = printed_metrics(capsys.readouterr().out)
    assert named(metrics, "ImagesDeferred") == [("ImagesDeferred", 2.0, {"service": "crawl", "Reason": "host_busy"})]
    assert named(metrics, "ImagesStored") == [("ImagesStored", 1.0, {"service": "crawl"})]


def test_robots_disallow_keeps_those_urls_from_ever_being_requested(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    polite_env(monkeypatch, overrides={SLOW: {"rate": None, "concurrency": None}})
    limited.routes["/robots.txt"] = Response(
        b"User-agent: PixCrawler\nDisallow: /private/\n\nUser-agent: *\nAllow: /\n"
    )
    allowed, disallowed = limited.serve(4, "/public"), limited.serve(4, "/private")
    job = new_job(session, urls=[*disallowed, *allowed])
    dispatch(apps.dispatch, job.id)

    deliver_until_done(crawl_env, apps.crawl, session, job.id)

    done = fresh(session, job.id)
    assert (done.status, done.downloaded_images, done.refused) == (JobStatus.COMPLETED, 4, {"robots_disallowed": 4})
    requested = [path for _, path, _ in limited.log]
    assert not any(path.startswith("/private/") for path in requested)
    assert limited.requests.count("/robots.txt") == 1  # once for the job's two chunks: cached in the database


def test_a_job_may_turn_robots_off_for_hosts_its_user_owns(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    polite_env(monkeypatch, overrides={SLOW: {"rate": None, "concurrency": None}})
    limited.routes["/robots.txt"] = Response(b"User-agent: *\nDisallow: /\n")
    job = new_job(session, urls=limited.serve(3), respect_robots=False)
    dispatch(apps.dispatch, job.id)

    deliver_until_done(crawl_env, apps.crawl, session, job.id)

    assert fresh(session, job.id).downloaded_images == 3 and "/robots.txt" not in limited.requests


@pytest.mark.parametrize("status", [503, 500])
def test_a_robots_txt_that_fails_with_5xx_refuses_the_host_for_a_while(
    crawl_env: dict[str, Any],
    session: Session,
    limited: LimitedHost,
    apps: Apps,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
) -> None:
    polite_env(monkeypatch, overrides={SLOW: {"rate": None, "concurrency": None}})
    limited.routes["/robots.txt"] = Response(b"", status)
    job = new_job(session, urls=limited.serve(3))
    dispatch(apps.dispatch, job.id)

    deliver_until_done(crawl_env, apps.crawl, session, job.id)

    done = fresh(session, job.id)
    assert (done.downloaded_images, done.refused) == (0, {"robots_unavailable": 3})
    assert limited.requests == ["/robots.txt"]


def test_a_throttled_host_does_not_hold_back_a_fast_one_in_the_same_chunk(
    crawl_env: dict[str, Any], session: Session, limited: LimitedHost, apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chunk, two hosts: one at a request every two seconds, one unthrottled. The first delivery stores
    every image of the fast host and one of the slow host, and defers the rest of the slow host's."""
    polite_env(
        monkeypatch,
        overrides={SLOW: {"rate": 0.5, "concurrency": 1}, FAST: {"rate": None, "concurrency": None}},
        CRAWL_URLS_PER_CHUNK=20,
        CRAWL_HOST_MAX_WAIT=1,
    )
    with LimitedHost(FAST) as fast:
        slow_urls, fast_urls = limited.serve(10), fast.serve(10, start=100)
        job = new_job(session, urls=[url for pair in zip(slow_urls, fast_urls, strict=True) for url in pair])
        dispatch(apps.dispatch, job.id)
        [message] = crawl_env["sqs"].receive_message(QueueUrl=crawl_env["queues"]["crawl"], AttributeNames=["All"])[
            "Messages"
        ]

        response = apps.crawl.lambda_handler({"Records": [lambda_record(message)]}, lambda_context("crawl"))

    assert response == {"batchItemFailures": []}
    [chunk] = chunks(session, job.id)
    assert (chunk.status, chunk.downloaded, len(chunk.pending or ())) == (JobStatus.PENDING, 11, 9)
    assert len(fast.times(200)) == 10 and len(limited.times(200)) == 1
    assert fresh(session, job.id).deferred == {"host_busy": 9}


def test_hosts_are_registrable_domains() -> None:
    assert hosts.host_key("upload.wikimedia.org") == hosts.host_key("commons.wikimedia.org") == "wikimedia.org"
    assert hosts.host_key("a.b.example.co.uk") == "example.co.uk"
    assert hosts.host_key("someone.github.io") == "someone.github.io"  # a private suffix: each user is a host
    assert hosts.host_key("127.0.0.2") == "127.0.0.2" and hosts.host_key("[::1]") == "::1"
    assert hosts.host_key("localhost") == "localhost"


def test_repeated_failures_open_a_circuit_whose_cool_down_doubles(
    crawl_env: dict[str, Any], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """429s without Retry-After pause 1, 2, 4, 8 s; the fifth in a row opens the circuit (60 s), the next five
    reopen it for 120 s; a Retry-After longer than that wins. Pauses are the database's own arithmetic."""
    polite_env(monkeypatch)
    settings, limits = get_settings(), hosts.Limits(5, 4)
    pauses = [hosts.throttled("flaky.example", limits, None, settings) for _ in range(10)]
    assert [round(pause) for pause in pauses[:5]] == [1, 2, 4, 8, 60]
    assert all(55 < pause <= 60 for pause in pauses[5:9]) and 115 < pauses[9] <= 120
    assert 299 < hosts.throttled("flaky.example", limits, 300.0, settings) <= 300
    budget = session.get_one(HostBudget, "flaky.example")
    assert (budget.circuit_opens, budget.failures, budget.rate_factor) == (2, 1, hosts.FLOOR)
