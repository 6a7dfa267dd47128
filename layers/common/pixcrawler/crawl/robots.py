"""robots.txt: fetched once per origin through the crawl's own Downloader and cached in PostgreSQL.

Parsed with `protego` (pure Python, the parser Scrapy uses): it follows RFC 9309 (wildcards, `$`, the longest
match wins between Allow and Disallow) and reads `Crawl-delay`, which the stdlib's `urllib.robotparser`
matches by prefix only. Rules are looked up for our user agent's product token (`PixCrawler`).

What a fetch means, as RFC 9309 and the big crawlers have it:
- 200: the file's rules, for 24 hours;
- any other 4xx (none there, forbidden, ...): everything allowed, for 24 hours;
- 5xx, or the host cannot be reached: everything disallowed, for 10 minutes; the candidates are refused as
  `robots_unavailable` and a later job tries the file again.
Redirects are followed like an image's (up to `DOWNLOAD_MAX_REDIRECTS`); the first 500 KiB are parsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from protego import Protego
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from pixcrawler.crawl.download import Downloader, DownloadRejected
from pixcrawler.crawl.refusals import Refusal
from pixcrawler.db import session_scope
from pixcrawler.lifecycle import now
from pixcrawler.models import RobotsFile

MAX_BYTES = 500 * 1024
KEPT = timedelta(hours=24)
UNAVAILABLE_KEPT = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Rules:
    """One origin's verdicts: `parser` None allows everything; `refused` refuses everything for that reason."""

    parser: Protego | None
    refused: Refusal | None = None

    def refusal(self, url: str, agent: str) -> Refusal | None:
        if self.refused is not None:
            return self.refused
        if self.parser is not None and not self.parser.can_fetch(url, agent):
            return Refusal.ROBOTS_DISALLOWED
        return None

    def crawl_delay(self, agent: str) -> float | None:
        delay = self.parser.crawl_delay(agent) if self.parser is not None else None
        return float(delay) if delay else None


ALLOW_ALL = Rules(None)
OUR_POLICY = frozenset({Refusal.MALFORMED_URL, Refusal.LOOPBACK_NOT_ALLOWED, Refusal.ADDRESS_NOT_ALLOWED})


def origin_of(url: str) -> str | None:
    """`scheme://host:port` of an http(s) URL, or None for a URL the downloader will refuse anyway."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def agent_token(user_agent: str) -> str:
    """The product token robots.txt groups name: `PixCrawler` of `PixCrawler/0.1 (+https://...)`."""
    return user_agent.split("/", 1)[0].split(" ", 1)[0]


def _rules(status: int, body: str | None) -> Rules:
    if status == 200:
        return Rules(Protego.parse(body or ""))
    if 400 <= status < 500:
        return ALLOW_ALL
    return Rules(None, Refusal.ROBOTS_UNAVAILABLE)


def cached(origins: set[str]) -> dict[str, Rules]:
    """The unexpired rules of these origins, in one query."""
    if not origins:
        return {}
    with session_scope() as session:
        rows = session.execute(
            select(RobotsFile.origin, RobotsFile.status, RobotsFile.body).where(
                RobotsFile.origin.in_(origins), RobotsFile.expires_at > now()
            )
        )
        return {origin: _rules(status, body) for origin, status, body in rows}


def fetch(origin: str, downloader: Downloader, stop_by: float = math.inf) -> Rules:
    """Fetch `origin`'s robots.txt now and cache it (the last fetch wins: both saw the same host). A chunk
    out of time learns nothing about the host: its candidates are refused as such and nothing is cached. A
    host our own policy refuses (its address, its URL) is not asked at all: the image downloads refuse each
    candidate for that reason."""
    try:
        status, data = downloader.fetch_text(f"{origin}/robots.txt", MAX_BYTES, stop_by)
    except DownloadRejected as error:
        if error.reason is Refusal.OUT_OF_TIME:
            return Rules(None, Refusal.OUT_OF_TIME)
        if error.reason in OUR_POLICY:
            return ALLOW_ALL
        status, data = 0, b""
    body = data.decode("utf-8", errors="replace") if status == 200 else None
    fetched: datetime = now()
    expires = fetched + (UNAVAILABLE_KEPT if status == 0 or status >= 500 else KEPT)
    values = {"origin": origin, "status": status, "body": body, "fetched_at": fetched, "expires_at": expires}
    with session_scope() as session:
        session.execute(
            insert(RobotsFile)
            .values(values)
            .on_conflict_do_update(index_elements=[RobotsFile.origin], set_={**values, "updated_at": fetched})
        )
    return _rules(status, body)
