"""The safe downloader against real loopback servers: formats, limits, timeouts, redirects, SSRF, opt-outs."""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pixcrawler.crawl import deadlines, download
from pixcrawler.crawl.download import Downloader, DownloadRejected, opted_out
from pixcrawler.crawl.net import refusal, resolve_public
from pixcrawler.crawl.refusals import Refusal
from pixcrawler.settings import Settings, get_settings
from pixcrawler_local import samples
from pixcrawler_local.httphost import HttpHost, Response
from tests.crawl.conftest import HostileHost

JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture
def downloader(monkeypatch: pytest.MonkeyPatch) -> Iterator[Downloader]:
    monkeypatch.setenv("CRAWL_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("DOWNLOAD_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("DOWNLOAD_TOTAL_TIMEOUT", "2")
    monkeypatch.setenv("DOWNLOAD_MAX_BYTES", "100000")
    monkeypatch.setenv("DOWNLOAD_MAX_REDIRECTS", "3")
    get_settings.cache_clear()
    loader = Downloader(get_settings())
    yield loader
    loader.close()
    get_settings.cache_clear()


def refusal_of(downloader: Downloader, url: str, stop_by: float = math.inf) -> DownloadRejected:
    with pytest.raises(DownloadRejected) as caught:
        downloader.fetch(url, stop_by)
    return caught.value


def rejection(downloader: Downloader, url: str, stop_by: float = math.inf) -> str:
    return str(refusal_of(downloader, url, stop_by))


def test_a_jpeg_is_fetched_with_its_header_facts(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/a.jpg"] = Response(samples.jpeg(1, 120, 80), headers={"Content-Type": "image/jpeg; charset=x"})
    fetched = downloader.fetch(host.url("/a.jpg"))
    assert (fetched.format.name, fetched.width, fetched.height) == ("JPEG", 120, 80)
    assert fetched.data == samples.jpeg(1, 120, 80)
    assert len(fetched.sha256) == 64


def test_png_and_redirects_within_the_limit_are_followed(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/final.png"] = Response(samples.png(2, 30, 20), headers={"Content-Type": "image/png"})
    host.routes["/hop1"] = Response(status=302, headers={"Location": "/hop2"})
    host.routes["/hop2"] = Response(status=301, headers={"Location": host.url("/final.png")})
    fetched = downloader.fetch(host.url("/hop1"))
    assert (fetched.format.extension, fetched.width, fetched.final_url) == ("png", 30, host.url("/final.png"))


def test_a_redirect_loop_is_bounded(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/loop"] = Response(status=302, headers={"Location": "/loop"})
    assert "more than 3 redirects" in rejection(downloader, host.url("/loop"))
    assert len(host.requests) == 4


def test_corrupt_image_is_rejected(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/bad.jpg"] = Response(b"\xff\xd8\xff" + b"\x00garbage" * 50, headers=JPEG)
    assert "not a decodable JPEG header" in rejection(downloader, host.url("/bad.jpg"))


def test_html_served_as_jpeg_is_rejected(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/page.jpg"] = Response(b"<!doctype html><html><body>hi</body></html>", headers=JPEG)
    assert "does not match the file's magic bytes" in rejection(downloader, host.url("/page.jpg"))


def test_png_bytes_declared_as_jpeg_are_rejected(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/x.jpg"] = Response(samples.png(3), headers=JPEG)
    assert "magic bytes" in rejection(downloader, host.url("/x.jpg"))


def test_non_image_content_type_is_rejected(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/x"] = Response(samples.jpeg(3), headers={"Content-Type": "text/html"})
    assert "'text/html' is not a supported image type" in rejection(downloader, host.url("/x"))


def test_http_errors_are_rejected(downloader: Downloader, host: HttpHost) -> None:
    assert rejection(downloader, host.url("/missing.jpg")) == "HTTP 404"


def test_declared_oversized_body_is_refused_before_reading(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/big.jpg"] = Response(samples.jpeg(4, 1500, 1500, quality=100), headers=JPEG)
    assert "Content-Length" in rejection(downloader, host.url("/big.jpg"))


@pytest.fixture
def endless_server() -> Iterator[dict[str, Any]]:
    """A server that streams a JPEG-looking body without Content-Length and never stops: only our limit ends it."""
    listener = socket.create_server(("127.0.0.1", 0))
    state: dict[str, Any] = {"sent": 0, "port": listener.getsockname()[1]}

    def serve() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n\xff\xd8\xff")
        try:
            while state["sent"] < 50_000_000:
                connection.sendall(b"\x00" * 65536)
                state["sent"] += 65536
        except OSError:
            pass
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state
    listener.close()
    thread.join(timeout=5)


def test_size_limit_is_enforced_while_streaming(downloader: Downloader, endless_server: dict[str, Any]) -> None:
    reason = rejection(downloader, f"http://127.0.0.1:{endless_server['port']}/stream.jpg")
    assert reason == "body exceeds the 100000-byte limit"
    time.sleep(0.2)
    assert endless_server["sent"] < 10_000_000


def test_slow_server_times_out(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/slow.jpg"] = Response(samples.jpeg(5), headers=JPEG, delay=1.5)
    started = time.monotonic()
    refused = refusal_of(downloader, host.url("/slow.jpg"))
    assert (refused.reason, str(refused)) == (Refusal.TIMEOUT, "no response within 0.5 s")
    assert time.monotonic() - started < 1.4


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/x.jpg", "http://[::ffff:192.168.0.1]/x.jpg"],
)
def test_redirect_to_an_internal_address_is_refused(downloader: Downloader, host: HttpHost, target: str) -> None:
    host.routes["/r.jpg"] = Response(status=302, headers={"Location": target})
    reason = rejection(downloader, host.url("/r.jpg"))
    assert "resolves to" in reason and ("link-local" in reason or "private" in reason)


def test_loopback_is_refused_unless_explicitly_allowed(host: HttpHost) -> None:
    host.routes["/a.jpg"] = Response(samples.jpeg(1), headers=JPEG)
    settings = Settings.from_env()
    assert settings.crawl_allow_loopback is False
    with pytest.raises(DownloadRejected, match="loopback"):
        Downloader(settings).fetch(host.url("/a.jpg"))
    assert host.requests == []


def test_a_hostname_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(DownloadRejected, match="'localhost' resolves to loopback"):
        Downloader(Settings.from_env()).fetch("http://localhost:9/a.jpg")


def test_each_host_is_resolved_once_per_downloader_and_refusals_stick(
    downloader: Downloader, host: HttpHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.routes["/a.jpg"] = Response(samples.jpeg(1), headers=JPEG)
    lookups: list[str] = []

    def counting(name: str, *args: Any, **kwargs: Any) -> tuple[str, ...]:
        lookups.append(name)
        return resolve_public(name, *args, **kwargs)

    monkeypatch.setattr(download, "resolve_public", counting)
    for _ in range(3):
        downloader.fetch(host.url("/a.jpg"))
    for _ in range(2):
        assert "10.0.0.8" in rejection(downloader, "http://10.0.0.8/a.jpg")
    assert lookups == ["127.0.0.1", "10.0.0.8"]
    assert host.requests == ["/a.jpg"] * 3


def test_an_unreachable_address_falls_back_to_the_hosts_next_address(
    downloader: Downloader, host: HttpHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`two.test` resolves to 127.0.0.2 (nothing listens there) and then to the host's 127.0.0.1."""
    host.routes["/a.jpg"] = Response(samples.jpeg(1), headers=JPEG)
    port = int(host.base_url.rsplit(":", 1)[1])
    real_getaddrinfo = socket.getaddrinfo

    def two_records(name: str, port_: int, *args: Any, **kwargs: Any) -> Any:
        if name != "two.test":
            return real_getaddrinfo(name, port_, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port_)) for ip in ("127.0.0.2", "127.0.0.1")]

    monkeypatch.setattr(socket, "getaddrinfo", two_records)
    fetched = downloader.fetch(f"http://two.test:{port}/a.jpg")
    assert fetched.data == samples.jpeg(1)
    assert [(received.path, received.headers["Host"]) for received in host.received] == [("/a.jpg", f"two.test:{port}")]
    reason = rejection(downloader, "http://two.test:1/a.jpg")  # nothing listens on port 1 at either address
    assert reason.startswith("cannot connect to two.test: 127.0.0.2: NewConnectionError; 127.0.0.1: ")


def test_a_download_does_not_start_after_the_chunks_stop_time(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/a.jpg"] = Response(samples.jpeg(1), headers=JPEG)
    assert "ran out of time" in rejection(downloader, host.url("/a.jpg"), stop_by=time.monotonic())
    assert host.requests == []
    assert downloader.fetch(host.url("/a.jpg"), stop_by=time.monotonic() + 10).data == samples.jpeg(1)


def test_x_robots_tag_opt_out_is_honoured(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/ai.jpg"] = Response(samples.jpeg(6), headers={**JPEG, "X-Robots-Tag": "noindex, noimageai"})
    assert "X-Robots-Tag" in rejection(downloader, host.url("/ai.jpg"))
    assert opted_out(["otherbot: noai"]) and opted_out(["NOAI"]) and not opted_out(["noindex, nofollow"])


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not globally routable"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_policy(address: str, reason: str | None) -> None:
    assert refusal(ipaddress.ip_address(address), allow_loopback=False) == reason


def test_allowing_loopback_allows_nothing_else() -> None:
    assert refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), allow_loopback=True) == "private"


@pytest.mark.parametrize("url", ["http://x:99999/a.jpg", "http://[::1/x", "http://x:-1/a.jpg", "ftp://x/a.jpg"])
def test_a_malformed_url_is_refused_as_such(downloader: Downloader, url: str) -> None:
    assert refusal_of(downloader, url).reason is Refusal.MALFORMED_URL


@pytest.mark.parametrize("location", ["http://127.0.0.1:99999/", "http://[::1/x", "http://x:-1/a.jpg"])
def test_a_malformed_redirect_is_refused_as_such(downloader: Downloader, host: HttpHost, location: str) -> None:
    host.routes["/r.jpg"] = Response(status=302, headers={"Location": location})
    assert refusal_of(downloader, host.url("/r.jpg")).reason is Refusal.MALFORMED_URL


def test_each_refusal_names_its_reason(downloader: Downloader, host: HttpHost) -> None:
    host.routes["/page.jpg"] = Response(b"<!doctype html>", headers=JPEG)
    host.routes["/big.jpg"] = Response(samples.jpeg(4, 1500, 1500, quality=100), headers=JPEG)
    host.routes["/ai.jpg"] = Response(samples.jpeg(6), headers={**JPEG, "X-Robots-Tag": "noai"})
    host.routes["/loop"] = Response(status=302, headers={"Location": "/loop"})
    host.routes["/internal"] = Response(status=302, headers={"Location": "http://10.1.2.3/x.jpg"})
    reasons = {path: refusal_of(downloader, host.url(path)).reason for path in host.routes}
    reasons["/missing.jpg"] = refusal_of(downloader, host.url("/missing.jpg")).reason
    reasons["closed port"] = refusal_of(downloader, "http://127.0.0.1:1/a.jpg").reason
    no_loopback = Downloader(downloader.settings.model_copy(update={"crawl_allow_loopback": False}))
    reasons["loopback"] = refusal_of(no_loopback, host.url("/ai.jpg")).reason
    assert reasons == {
        "/page.jpg": Refusal.NOT_AN_IMAGE,
        "/big.jpg": Refusal.TOO_LARGE,
        "/ai.jpg": Refusal.OPTED_OUT,
        "/loop": Refusal.TOO_MANY_REDIRECTS,
        "/internal": Refusal.ADDRESS_NOT_ALLOWED,
        "/missing.jpg": Refusal.HTTP_STATUS,
        "closed port": Refusal.CONNECTION_FAILED,
        "loopback": Refusal.LOOPBACK_NOT_ALLOWED,
    }


@pytest.mark.parametrize("path", ["/drip.jpg", "/drip-headers.jpg"])
def test_a_response_that_keeps_trickling_ends_at_the_total_timeout(
    downloader: Downloader, hostile: HostileHost, path: str
) -> None:
    """One byte every 10 ms never lets a 0.5 s read timeout fire; the 2 s total timeout still ends it."""
    started = time.monotonic()
    refused = refusal_of(downloader, hostile.url(path))
    assert (refused.reason, str(refused)) == (Refusal.TIMEOUT, "download took longer than 2.0 s")
    assert time.monotonic() - started < 3 * 2.0  # generous: the watchdog ends it at 2 s


def test_a_trickling_response_past_the_chunks_stop_time_ran_out_of_time(
    downloader: Downloader, hostile: HostileHost
) -> None:
    refused = refusal_of(downloader, hostile.url("/drip.jpg"), stop_by=time.monotonic() + 0.5)
    assert refused.reason is Refusal.OUT_OF_TIME


@pytest.mark.parametrize("path", ["/redirect-drip", "/redirect-endless"])
def test_a_redirects_body_is_never_read(
    downloader: Downloader, hostile: HostileHost, host: HttpHost, path: str
) -> None:
    """A redirect is followed as soon as its headers arrive, whatever its body does (trickle, or never end)."""
    host.routes["/a.jpg"] = Response(samples.jpeg(7), headers=JPEG)
    hostile.target = host.url("/a.jpg")
    started = time.monotonic()
    assert downloader.fetch(hostile.url(path)).data == samples.jpeg(7)
    assert time.monotonic() - started < 3 * 2.0  # generous: no body is read, so it takes milliseconds


def test_ended_fetches_do_not_pile_up_in_the_watchdog() -> None:
    """A busy worker ends thousands of fetches a minute long before their deadlines: only live ones stay."""
    for _ in range(5000):
        with deadlines.watching(time.monotonic() + 60):
            pass
    assert len(deadlines._watchdog._heap) <= 2048
