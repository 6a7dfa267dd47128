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
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from PIL import Image as PILImage
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error

from pixcrawler.crawl.net import AddressRefused, resolve_public
from pixcrawler.settings import Settings

REDIRECTS = frozenset({301, 302, 303, 307, 308})
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
    """This candidate is skipped; `str(error)` is the reason recorded for it."""


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
        raise DownloadRejected(f"content type {content_type or 'missing'!r} is not a supported image type")
    if not declared.matches(data):
        raise DownloadRejected(f"content type {content_type} does not match the file's magic bytes")
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            found, (width, height) = image.format, image.size
    except Exception as error:
        raise DownloadRejected(f"not a decodable {declared.name} header: {error}") from error
    if found != declared.name:
        raise DownloadRejected(f"header is {found}, content type says {declared.name}")
    return declared, width, height


class Downloader:
    """Fetches image URLs safely; one instance per chunk, shared by its download threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._timeout = urllib3.Timeout(connect=settings.download_connect_timeout, read=settings.download_read_timeout)
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
                    pool = urllib3.HTTPSConnectionPool(
                        address, port, maxsize=size, server_hostname=hostname, assert_hostname=hostname
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, port, maxsize=size)
                self._pools[key] = pool
            return pool

    def fetch(self, url: str, stop_by: float = math.inf) -> Fetched:
        """Download `url`; `stop_by` (a `time.monotonic()` value) cuts the total timeout short."""
        deadline = min(time.monotonic() + self.settings.download_total_timeout, stop_by)
        if time.monotonic() >= deadline:
            raise DownloadRejected("the chunk ran out of time before this download started")
        current = url
        for _ in range(self.settings.download_max_redirects + 1):
            response = self._request(current)
            if response.status in REDIRECTS and response.headers.get("Location"):
                response.drain_conn()
                response.release_conn()
                current = urljoin(current, response.headers["Location"])
                continue
            try:
                fetched = self._accept(url, current, response, deadline)
            except BaseException:
                response.close()  # an unread or half-read body must not go back into the keep-alive pool
                raise
            response.release_conn()
            return fetched
        raise DownloadRejected(f"more than {self.settings.download_max_redirects} redirects")

    def _request(self, url: str) -> urllib3.BaseHTTPResponse:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadRejected(f"unsupported URL {url[:200]!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host_header = parts.netloc.rsplit("@", 1)[-1]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        unreachable: list[str] = []
        for address in self._addresses_of(parts.hostname, port):
            try:
                return self._pool(parts.scheme, address, port, parts.hostname).urlopen(
                    "GET",
                    path,
                    headers={"Host": host_header, "User-Agent": self.settings.crawl_user_agent, "Accept": "image/*"},
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    timeout=self._timeout,
                    assert_same_host=False,
                )
            except ConnectTimeoutError as error:  # no connection was made: the host's next address may answer
                unreachable.append(f"{address}: {type(error).__name__}")
            except (Urllib3Error, OSError) as error:
                raise DownloadRejected(f"request failed: {type(error).__name__}: {error}") from error
        raise DownloadRejected(f"cannot connect to {parts.hostname}: {'; '.join(unreachable)}")

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
            raise DownloadRejected(str(verdict)) from verdict
        return verdict

    def _accept(self, url: str, final_url: str, response: urllib3.BaseHTTPResponse, deadline: float) -> Fetched:
        if response.status != 200:
            raise DownloadRejected(f"HTTP {response.status}")
        if opted_out(response.headers.getlist("X-Robots-Tag")):
            raise DownloadRejected("X-Robots-Tag opts out of AI use")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in _BY_MIME:
            raise DownloadRejected(f"content type {content_type or 'missing'!r} is not a supported image type")
        limit = self.settings.download_max_bytes
        declared_length = response.headers.get("Content-Length", "")
        if declared_length.isdigit() and int(declared_length) > limit:
            raise DownloadRejected(f"Content-Length {declared_length} exceeds the {limit}-byte limit")
        data = self._read(response, limit, deadline)
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

    @staticmethod
    def _read(response: urllib3.BaseHTTPResponse, limit: int, deadline: float) -> bytes:
        buffer = bytearray()
        try:
            for block in response.stream(BLOCK):
                buffer += block
                if len(buffer) > limit:
                    raise DownloadRejected(f"body exceeds the {limit}-byte limit")
                if time.monotonic() > deadline:
                    raise DownloadRejected("download took longer than the total timeout")
        except (Urllib3Error, OSError) as error:
            raise DownloadRejected(f"read failed: {type(error).__name__}: {error}") from error
        return bytes(buffer)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
