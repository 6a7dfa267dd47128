"""The provider interface and the JSON client the search providers share.

A provider turns one unit of work (a keyword page, or a slice of explicit URLs) into candidates. Parsing is
defensive: a result with a missing field or an unexpected shape is skipped with a logged reason, never
failing the chunk; only transport problems (rate limits, outages) raise.
"""

from __future__ import annotations

import email.utils
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import urllib3
from aws_lambda_powertools import Logger
from urllib3.exceptions import HTTPError as Urllib3Error

from pixcrawler import snapstart
from pixcrawler.settings import get_settings

logger = Logger(child=True)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate:
    url: str
    source_url: str | None = None
    title: str | None = None
    width: int | None = None
    height: int | None = None
    license: str | None = None
    license_url: str | None = None
    creator: str | None = None


@dataclass(frozen=True, slots=True)
class Work:
    """What one chunk asks of its provider."""

    keyword: str
    page: int
    page_size: int
    urls: tuple[str, ...] = ()


class ProviderError(Exception):
    """The provider could not answer (outage, bad response); the chunk is retried, then marked failed."""


class RateLimited(ProviderError):
    """HTTP 429: try again after `retry_after` seconds; never counted as a failure while receives remain."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Provider(ABC):
    name: str
    max_results: int = 10_000
    """How deep the provider lets a query page; dispatch plans no pages beyond it."""

    @abstractmethod
    def candidates(self, work: Work) -> list[Candidate]: ...


def parse_each(items: Iterable[T], parse: Callable[[T], Candidate], provider: str) -> list[Candidate]:
    """Parse every result; a result that does not have the expected shape is logged and skipped."""
    found: list[Candidate] = []
    for item in items:
        try:
            found.append(parse(item))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            logger.warning("%s: skipped a result: %s: %s", provider, type(error).__name__, error)
    return found


def http_url(value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {str(value)[:200]!r}")
    return value


def optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def optional_text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit] if limit else value.strip()


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` is either delta-seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@cache
def _client() -> urllib3.PoolManager:
    settings = get_settings()
    return urllib3.PoolManager(
        headers={"User-Agent": settings.crawl_user_agent, "Accept": "application/json"},
        timeout=urllib3.Timeout(connect=settings.download_connect_timeout, read=settings.download_read_timeout),
        retries=urllib3.Retry(total=2, backoff_factor=0.5, status_forcelist=(), respect_retry_after_header=False),
    )


snapstart.after_restore(_client.cache_clear)
"""Pooled keep-alive connections do not survive a snapshot."""


def request_json(
    method: str,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    fields: Mapping[str, str] | None = None,
) -> Any:
    """One provider API call; 429 raises `RateLimited`, any other failure `ProviderError`."""
    target = f"{url}?{urlencode(params)}" if params else url
    try:
        if fields:
            response = _client().request(
                method, target, fields=dict(fields), headers=dict(headers or {}), encode_multipart=False
            )
        else:
            response = _client().request(method, target, headers=dict(headers or {}))
    except Urllib3Error as error:
        raise ProviderError(f"{urlsplit(url).netloc}: {type(error).__name__}: {error}") from error
    if response.status == 429:
        seconds = retry_after_seconds(response.headers.get("Retry-After"))
        raise RateLimited(f"{urlsplit(url).netloc} is rate limiting us (HTTP 429)", seconds)
    if response.status != 200:
        raise ProviderError(f"{urlsplit(url).netloc} answered HTTP {response.status}")
    try:
        return json.loads(response.data)
    except ValueError as error:
        raise ProviderError(f"{urlsplit(url).netloc} sent invalid JSON: {error}") from error


def reset() -> None:
    """Forget the pooled client (tests change settings)."""
    _client.cache_clear()
