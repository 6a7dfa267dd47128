"""Wikimedia Commons through the MediaWiki action API.

`generator=search` in the File namespace (6) with `prop=imageinfo` (`url|size|mime|extmetadata`) returns
each file's URL, size and licence metadata in one call. Pages are addressed by `gsroffset`, which is what
the API's own continuation token carries, so a chunk's page number maps to an offset without a cursor.
Commons asks bots for a descriptive User-Agent with contact details and answers anonymous ones with 429.
"""

from __future__ import annotations

import html
import re
from typing import Any

from pixcrawler.providers import base
from pixcrawler.providers.base import Candidate, Provider, ProviderError, Work
from pixcrawler.settings import get_settings

_TAG = re.compile(r"<[^>]+>")
METADATA = "Artist|LicenseShortName|LicenseUrl|ObjectName"


def plain(value: Any, limit: int | None = None) -> str | None:
    """extmetadata values are HTML fragments (`<a href=...>Name</a>`); keep the text."""
    if not isinstance(value, str):
        return None
    return base.optional_text(html.unescape(_TAG.sub("", value)), limit)


def parse_page(page: dict[str, Any]) -> Candidate:
    info = page["imageinfo"][0]
    if not str(info.get("mime", "")).startswith("image/"):
        raise ValueError(f"not an image: {info.get('mime')!r}")
    meta = info.get("extmetadata") or {}

    def field(name: str, limit: int | None = None) -> str | None:
        entry = meta.get(name)
        return plain(entry.get("value"), limit) if isinstance(entry, dict) else None

    title = field("ObjectName") or base.optional_text(str(page.get("title", "")).removeprefix("File:"))
    return Candidate(
        url=base.http_url(info["url"]),
        source_url=base.optional_text(info.get("descriptionurl")),
        title=title,
        width=base.optional_int(info.get("width")),
        height=base.optional_int(info.get("height")),
        license=field("LicenseShortName", 100),
        license_url=field("LicenseUrl"),
        creator=field("Artist"),
    )


class Wikimedia(Provider):
    name = "wikimedia"
    max_results = 10_000

    def candidates(self, work: Work) -> list[Candidate]:
        answer = base.request_json(
            "GET",
            get_settings().wikimedia_url,
            {
                "action": "query",
                "format": "json",
                "generator": "search",
                "gsrsearch": work.keyword,
                "gsrnamespace": 6,
                "gsrlimit": work.page_size,
                "gsroffset": (work.page - 1) * work.page_size,
                "prop": "imageinfo",
                "iiprop": "url|size|mime|extmetadata",
                "iiextmetadatafilter": METADATA,
            },
        )
        if not isinstance(answer, dict) or "error" in answer:
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise ProviderError(f"Commons API error: {str(error)[:300]}")
        pages = (answer.get("query") or {}).get("pages") or {}
        listed = list(pages.values()) if isinstance(pages, dict) else pages
        if not isinstance(listed, list):
            raise ProviderError("Commons answer has an unexpected pages shape")
        listed.sort(key=lambda page: page.get("index", 0) if isinstance(page, dict) else 0)
        return base.parse_each(listed, parse_page, self.name)
