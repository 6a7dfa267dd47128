"""The emulator's process is long-lived: what one request or connection used is freed when it ends, not left
for the cyclic garbage collector; and a client's pool of connections is kept, not reopened request by request."""

from __future__ import annotations

import gc
import http.client
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.web_protocol import RequestHandler

from pixcrawler_local.emulator import aws_server

CONNECTIONS = 150


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alive_connections() -> int:
    return sum(isinstance(thing, RequestHandler) for thing in gc.get_objects())


def test_a_closed_connection_is_freed_without_the_garbage_collector(tmp_path: Path, collector_off: None) -> None:
    with aws_server("127.0.0.1", 0, tmp_path, "us-east-1") as emulator:
        url = urlsplit(emulator.url)
        for _ in range(CONNECTIONS):
            connection = http.client.HTTPConnection(url.hostname or "", url.port)
            connection.request("GET", "/no-such-bucket/key")
            assert connection.getresponse().status == 404
            connection.close()
        deadline = time.monotonic() + 10
        while alive_connections() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive_connections() <= 0, f"{alive_connections()} of {CONNECTIONS} closed connections still held"


def test_a_pool_of_connections_as_large_as_the_crts_is_kept_alive(tmp_path: Path) -> None:
    pool_size = 40  # the CRT keeps about 25 open through a crawl; cheroot's default kept 10
    with aws_server("127.0.0.1", 0, tmp_path, "us-east-1") as emulator:
        url = urlsplit(emulator.url)
        pool = [http.client.HTTPConnection(url.hostname or "", url.port) for _ in range(pool_size)]
        closing = 0
        for _ in range(2):
            for connection in pool:
                connection.request("GET", "/no-such-bucket/key")
                response = connection.getresponse()
                response.read()
                closing += response.will_close
        for connection in pool:
            connection.close()
    assert closing == 0, f"{closing} of {2 * pool_size} responses closed their connection"
