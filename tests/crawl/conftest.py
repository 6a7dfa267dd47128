"""Crawl fixtures: loopback image hosts and provider APIs, the handlers loaded from functions/, queue draining."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Engine

from pixcrawler import db, object_keys
from pixcrawler.models import Image
from pixcrawler.providers import base as provider_base
from pixcrawler.settings import get_settings
from pixcrawler_local import samples
from pixcrawler_local.httphost import HttpHost, Response
from tests.conftest import ROOT, load_function
from tests.events import lambda_context

FIXTURES = ROOT / "tests" / "fixtures" / "providers"


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class Apps(NamedTuple):
    dispatch: ModuleType
    crawl: ModuleType


@pytest.fixture(scope="session")
def apps() -> Apps:
    return Apps(load_function("dispatch"), load_function("crawl"))


LOOPBACK_UNLIMITED = '{"127.0.0.1": {"rate": null, "concurrency": null}}'
"""The crawl tests' usual image host (127.0.0.1) is unthrottled; the politeness tests use 127.0.0.2 and up."""


@pytest.fixture
def crawl_env(
    engine: Engine, aws_over_http: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Loopback allowed (explicitly), short timeouts, a small size limit, and a pool for concurrent workers."""
    for name, value in {
        "CRAWL_ALLOW_LOOPBACK": "1",
        "DOWNLOAD_CONNECT_TIMEOUT": "1",
        "DOWNLOAD_READ_TIMEOUT": "0.5",
        "DOWNLOAD_TOTAL_TIMEOUT": "3",
        "DOWNLOAD_MAX_BYTES": "200000",
        "CRAWL_URLS_PER_CHUNK": "4",
        "CRAWL_PAGE_SIZE": "4",
        "DB_POOL_SIZE": "4",
        "CRAWL_HOST_OVERRIDES": LOOPBACK_UNLIMITED,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    provider_base.reset()
    db.reset()
    yield aws_over_http
    provider_base.reset()
    monkeypatch.delenv("DB_POOL_SIZE", raising=False)  # later tests expect the Lambda-sized engine again
    get_settings.cache_clear()
    db.reset()


@pytest.fixture
def host() -> Iterator[HttpHost]:
    with HttpHost() as server:
        yield server


@pytest.fixture
def openverse_api(host: HttpHost, monkeypatch: pytest.MonkeyPatch) -> HttpHost:
    """`host` doubles as the Openverse API: OPENVERSE_URL points at it."""
    monkeypatch.setenv("OPENVERSE_URL", host.base_url)
    get_settings.cache_clear()
    return host


HOSTILE_FOR = 12.0
"""Seconds a hostile response keeps going: long enough to outlast every limit under test, short enough that
code without deadlines fails its test instead of hanging the suite."""


class HostileHost:
    """A raw HTTP/1.1 server on loopback that misbehaves on purpose; each path names its behaviour.

    `/drip.jpg`: an image's headers, then its body one byte every 10 ms. `/drip-headers.jpg`: a header line
    one byte every 10 ms. `/redirect-drip`: a redirect to `target` whose body drips. `/redirect-endless`: a
    redirect to `target` with an endless chunked body sent as fast as the client takes it. `/robots.txt`: 404."""

    def __init__(self) -> None:
        self.target = "/nowhere"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{path}"

    def __enter__(self) -> HostileHost:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, suppress(OSError):  # OSError: the client hung up, as a deadline makes it do
            request = b""
            while b"\r\n\r\n" not in request:
                received = connection.recv(4096)
                if not received:
                    return
                request += received
            path = request.split(b" ", 2)[1].decode()
            if path == "/robots.txt":  # no robots.txt: the misbehaviour under test is the images'
                connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            redirect = f"HTTP/1.1 302 Found\r\nLocation: {self.target}\r\n".encode()
            heads = {
                "/drip.jpg": b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 99999\r\n\r\n",
                "/drip-headers.jpg": b"HTTP/1.1 200 OK\r\nX-Slow: ",
                "/redirect-drip": redirect + b"Content-Length: 99999\r\n\r\n",
                "/redirect-endless": redirect + b"Transfer-Encoding: chunked\r\n\r\n",
            }
            connection.sendall(heads[path])
            endless = path == "/redirect-endless"
            piece, pause = (b"10000\r\n" + b"a" * 0x10000 + b"\r\n", 0.0) if endless else (b"a", 0.01)
            stop = time.monotonic() + HOSTILE_FOR
            while time.monotonic() < stop:
                connection.sendall(piece)
                time.sleep(pause)


@pytest.fixture
def hostile() -> Iterator[HostileHost]:
    with HostileHost() as server:
        yield server


def serve_jpegs(host: HttpHost, count: int, *, start: int = 0, prefix: str = "/img") -> list[str]:
    urls = []
    for seed in range(start, start + count):
        host.routes[f"{prefix}/{seed}.jpg"] = Response(
            samples.jpeg(seed, 64 + seed % 7, 48), headers={"Content-Type": "image/jpeg"}
        )
        urls.append(host.url(f"{prefix}/{seed}.jpg"))
    return urls


def lambda_record(message: dict[str, Any]) -> dict[str, Any]:
    """A message received from (moto) SQS, shaped as the Lambda event source mapping delivers it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:crawl",
        "awsRegion": "us-east-1",
    }


def drain(
    aws: dict[str, Any],
    app: ModuleType,
    queue: str = "crawl",
    *,
    rounds: int = 10,
    before_round: Callable[[int], None] | None = None,
    batch_size: int = 10,
) -> list[dict[str, Any]]:
    """Deliver the queue's messages to a handler as Lambda would: delete successes, make failures visible again."""
    sqs, url = aws["sqs"], aws["queues"][queue]
    responses = []
    for round_number in range(rounds):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch_size, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not messages:
            break
        if before_round:
            before_round(round_number)
        response = app.lambda_handler({"Records": [lambda_record(m) for m in messages]}, lambda_context(queue))
        responses.append(response)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return responses


def queued(aws: dict[str, Any], queue: str = "crawl") -> int:
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=aws["queues"][queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def bucket_keys(aws: dict[str, Any]) -> list[str]:
    listing = aws["s3"].list_objects_v2(Bucket=aws["bucket"])
    return sorted(item["Key"] for item in listing.get("Contents", []))


def objects_of(rows: Sequence[Image]) -> list[str]:
    """The keys image rows account for: each original, and its thumbnail when the row says it has one (an
    original that is its own thumbnail is one object)."""
    keys = {row.storage_url for row in rows}
    thumbnails = {
        object_keys.thumbnail_key(row.storage_url, row.thumbnail_format) for row in rows if row.thumbnail_format
    }
    return sorted(keys | thumbnails)
