"""The safe image downloader.

Every hop is resolved and checked (`net.resolve_public`) and the connection goes to a checked address (the
host's next one when a connection cannot be made); redirects are bounded and re-checked; the size limit is
enforced while streaming; the declared `Content-Type` and the file's magic bytes must name the same format;
`X-Robots-Tag: noai`/`noimageai` opt-outs are honoured; width, height and format come from the header,
without decoding the pixels.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import urllib3
from PIL import Image as PILImage
from urllib3.exceptions import ConnectTimeoutError, ReadTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error

from pixcrawler.crawl.deadlines import Watch, WatchedPool, WatchedTLSPool, watching
from pixcrawler.crawl.net import AddressRefused, resolve_public
from pixcrawler.crawl.refusals import Refusal
from pixcrawler.providers.base import retry_after_seconds
from pixcrawler.settings import Settings

T = TypeVar("T")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
THROTTLING = frozenset({429, 503})
OPT_OUTS = frozenset({"noai", "noimageai"})
BLOCK = 64 * 1024


@dataclass(frozen=True, slots=True)
class ImageFormat:
    name: str
    extension: str
    mime_types: frozenset[str]
    magic: tuple[bytes, ...]

    def matches(self, data: bytes) -> bool:
        if self.name == "WEBP":
            return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
        return data.startswith(self.magic)


FORMATS = (
    ImageFormat("JPEG", "jpg", frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}), (b"\xff\xd8\xff",)),
    ImageFormat("PNG", "png", frozenset({"image/png"}), (b"\x89PNG\r\n\x1a\n",)),
    ImageFormat("GIF", "gif", frozenset({"image/gif"}), (b"GIF87a", b"GIF89a")),
    ImageFormat("WEBP", "webp", frozenset({"image/webp"}), (b"RIFF",)),
    ImageFormat("BMP", "bmp", frozenset({"image/bmp", "image/x-ms-bmp"}), (b"BM",)),
    ImageFormat("TIFF", "tif", frozenset({"image/tiff"}), (b"II*\x00", b"MM\x00*")),
)
_BY_MIME = {mime: image_format for image_format in FORMATS for mime in image_format.mime_types}


class DownloadRejected(Exception):
    """This candidate is refused: `reason` is what the chunk and job count, `str(error)` the logged detail."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Throttled(DownloadRejected):
    """The host answered 429 or 503: not this candidate's fault; it is deferred and the host paused."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(
            Refusal.HTTP_STATUS, f"HTTP {status}" + (f", Retry-After {retry_after:g} s" if retry_after else "")
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    final_url: str
    data: bytes
    content_type: str
    format: ImageFormat
    width: int
    height: int
    sha256: str


def opted_out(header_values: list[str]) -> bool:
    """True when an `X-Robots-Tag` value carries `noai` or `noimageai` (optionally after `agent:`)."""
    for value in header_values:
        for directive in value.split(","):
            if directive.rsplit(":", 1)[-1].strip().lower() in OPT_OUTS:
                return True
    return False


def inspect(data: bytes, content_type: str) -> tuple[ImageFormat, int, int]:
    """Check that the declared type, the magic bytes and Pillow's header parse agree; return format and size."""
    declared = _BY_MIME.get(content_type)
    if declared is None:
        raise DownloadRejected(
            Refusal.NOT_AN_IMAGE, f"content type {content_type or 'missing'!r} is not a supported image type"
        )
    if not declared.matches(data):
        raise DownloadRejected(
            Refusal.NOT_AN_IMAGE, f"content type {content_type} does not match the file's magic bytes"
        )
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            found, (width, height) = image.format, image.size
    except Exception as error:
        raise DownloadRejected(Refusal.NOT_AN_IMAGE, f"not a decodable {declared.name} header: {error}") from error
    if found != declared.name:
        raise DownloadRejected(Refusal.NOT_AN_IMAGE, f"header is {found}, content type says {declared.name}")
    return declared, width, height


class Downloader:
    """Fetches image URLs safely; one instance per chunk, shared by its download threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._addresses: dict[tuple[str, int], tuple[str, ...] | AddressRefused] = {}
        self._lock = threading.Lock()

    def _pool(self, scheme: str, address: str, port: int, hostname: str) -> urllib3.HTTPConnectionPool:
        """A keep-alive pool per checked address; TLS still verifies the certificate for the real host name."""
        key = (scheme, address, port, hostname)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                size = self.settings.download_concurrency
                if scheme == "https":
                    pool = WatchedTLSPool(
                        address, port, maxsize=size, server_hostname=hostname, assert_hostname=hostname
                    )
                else:
                    pool = WatchedPool(address, port, maxsize=size)
                self._pools[key] = pool
            return pool

    def fetch(self, url: str, stop_by: float = math.inf) -> Fetched:
        """Download `url` within `DOWNLOAD_TOTAL_TIMEOUT`, cut short by `stop_by` (a `time.monotonic()` value,
        the chunk's own limit). Every way this candidate can fail raises `DownloadRejected`, except a bug."""
        final_url, (content_type, data) = self._fetch(url, stop_by, self._accept)
        image_format, width, height = inspect(data, content_type)
        return Fetched(
            url=url,
            final_url=final_url,
            data=data,
            content_type=content_type,
            format=image_format,
            width=width,
            height=height,
            sha256=hashlib.sha256(data).hexdigest(),
        )

    def fetch_text(self, url: str, limit: int, stop_by: float = math.inf) -> tuple[int, bytes]:
        """The final status of `url` and, for a 200, its first `limit` bytes (robots.txt), under the same
        address checks, redirect limit and deadlines as an image; failures raise `DownloadRejected`."""
        return self._fetch(url, stop_by, lambda response: _read_status(response, limit))[1]

    def _fetch(self, url: str, stop_by: float, accept: Callable[[urllib3.BaseHTTPResponse], T]) -> tuple[str, T]:
        started = time.monotonic()
        if started >= stop_by:
            raise DownloadRejected(Refusal.OUT_OF_TIME, "the chunk ran out of time before this download started")
        deadline = min(started + self.settings.download_total_timeout, stop_by)
        with watching(deadline) as watch:
            try:
                return self._follow(url, deadline, watch, accept)
            except DownloadRejected as error:
                ran_out = error.reason in (Refusal.TIMEOUT, Refusal.CONNECTION_FAILED) and time.monotonic() >= deadline
                if watch.end() or ran_out:  # once the watchdog cut in, any symptom is the deadline's doing
                    raise self._late(stop_by, deadline) from error
                raise

    def _late(self, stop_by: float, deadline: float) -> DownloadRejected:
        if stop_by <= deadline:
            return DownloadRejected(Refusal.OUT_OF_TIME, "the chunk ran out of time during this download")
        return DownloadRejected(Refusal.TIMEOUT, f"download took longer than {self.settings.download_total_timeout} s")

    def _follow(
        self, url: str, deadline: float, watch: Watch, accept: Callable[[urllib3.BaseHTTPResponse], T]
    ) -> tuple[str, T]:
        """Follow redirects to the final response and read it: its URL, content type and body.

        A redirect's body is never read: its connection is closed instead, so a host cannot hold the fetch
        with a slow or endless body nobody needs. The watch ends before a connection goes back to its pool."""
        current = url
        for _ in range(self.settings.download_max_redirects + 1):
            response = self._request(current, deadline)
            location = response.headers.get("Location")
            if response.status in REDIRECTS and location:
                _discard(response)
                try:
                    current = urljoin(current, location)
                except ValueError as error:
                    raise DownloadRejected(Refusal.MALFORMED_URL, f"redirect to {location[:200]!r}: {error}") from error
                continue
            try:
                accepted = accept(response)
            except BaseException:
                _discard(response)  # an unread or half-read body must not go back into the keep-alive pool
                raise
            if watch.end():
                _discard(response)
                raise DownloadRejected(Refusal.TIMEOUT, "the body was cut short by the deadline")
            response.release_conn()
            return current, accepted
        raise DownloadRejected(
            Refusal.TOO_MANY_REDIRECTS, f"more than {self.settings.download_max_redirects} redirects"
        )

    def _request(self, url: str, deadline: float) -> urllib3.BaseHTTPResponse:
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as error:
            raise DownloadRejected(Refusal.MALFORMED_URL, f"{url[:200]!r}: {error}") from error
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadRejected(Refusal.MALFORMED_URL, f"unsupported URL {url[:200]!r}")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        unreachable: list[str] = []
        for address in self._addresses_of(parts.hostname, port):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            timeout = urllib3.Timeout(
                connect=min(self.settings.download_connect_timeout, left), read=self.settings.download_read_timeout
            )
            try:
                return self._pool(parts.scheme, address, port, parts.hostname).urlopen(
                    "GET",
                    path,
                    headers={"Host": host_header, "User-Agent": self.settings.crawl_user_agent, "Accept": "image/*"},
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    timeout=timeout,
                    assert_same_host=False,
                )
            except ConnectTimeoutError as error:  # no connection was made: the host's next address may answer
                unreachable.append(f"{address}: {type(error).__name__}")
            except ReadTimeoutError as error:
                raise DownloadRejected(Refusal.TIMEOUT, f"no response within {timeout.read_timeout} s") from error
            except (Urllib3Error, OSError) as error:
                raise DownloadRejected(
                    Refusal.CONNECTION_FAILED, f"request failed: {type(error).__name__}: {error}"
                ) from error
        raise DownloadRejected(
            Refusal.CONNECTION_FAILED, f"cannot connect to {parts.hostname}: {'; '.join(unreachable)}"
        )

    def _addresses_of(self, host: str, port: int) -> tuple[str, ...]:
        """Resolve and check each host once per chunk (its URLs share a few hosts); the verdict is reused,
        and connections still go to the checked address."""
        verdict = self._addresses.get((host, port))
        if verdict is None:
            try:
                verdict = resolve_public(host, port, allow_loopback=self.settings.crawl_allow_loopback)
            except AddressRefused as error:
                verdict = error
            self._addresses[(host, port)] = verdict
        if isinstance(verdict, AddressRefused):
            reason = {None: Refusal.CONNECTION_FAILED, "loopback": Refusal.LOOPBACK_NOT_ALLOWED}.get(
                verdict.kind, Refusal.ADDRESS_NOT_ALLOWED
            )
            raise DownloadRejected(reason, str(verdict)) from verdict
        return verdict

    def _accept(self, response: urllib3.BaseHTTPResponse) -> tuple[str, bytes]:
        """Check the final response's status and headers, then read its body within the size limit."""
        if response.status in THROTTLING:
            raise Throttled(response.status, retry_after_seconds(response.headers.get("Retry-After")))
        if response.status != 200:
            raise DownloadRejected(Refusal.HTTP_STATUS, f"HTTP {response.status}")
        if opted_out(response.headers.getlist("X-Robots-Tag")):
            raise DownloadRejected(Refusal.OPTED_OUT, "X-Robots-Tag opts out of AI use")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in _BY_MIME:
            raise DownloadRejected(
                Refusal.NOT_AN_IMAGE, f"content type {content_type or 'missing'!r} is not a supported image type"
            )
        limit = self.settings.download_max_bytes
        declared_length = response.headers.get("Content-Length", "")
        if declared_length.isdigit() and int(declared_length) > limit:
            raise DownloadRejected(
                Refusal.TOO_LARGE, f"Content-Length {declared_length} exceeds the {limit}-byte limit"
            )
        return content_type, _read(response, limit, strict=True)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _read(response: urllib3.BaseHTTPResponse, limit: int, *, strict: bool) -> bytes:
    """The body, up to `limit` bytes: beyond it, refused when `strict`, else cut there."""
    buffer = bytearray()
    try:
        for block in response.stream(BLOCK):
            buffer += block
            if len(buffer) > limit:
                if strict:
                    raise DownloadRejected(Refusal.TOO_LARGE, f"body exceeds the {limit}-byte limit")
                return bytes(buffer[:limit])
    except ReadTimeoutError as error:
        raise DownloadRejected(Refusal.TIMEOUT, f"read timed out: {error}") from error
    except (Urllib3Error, OSError) as error:
        raise DownloadRejected(Refusal.CONNECTION_FAILED, f"read failed: {type(error).__name__}: {error}") from error
    return bytes(buffer)


def _read_status(response: urllib3.BaseHTTPResponse, limit: int) -> tuple[int, bytes]:
    return response.status, _read(response, limit, strict=False) if response.status == 200 else b""


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close the response's connection without reading what is left of its body, and give the pool back
    its slot (the connection object reconnects when next used)."""
    response.close()
    response.release_conn()
