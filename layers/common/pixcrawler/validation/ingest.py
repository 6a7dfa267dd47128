"""The facts the crawl records of each image as it stores it, and how validation reads them back.

The crawl worker already holds every image's bytes: one reduced decode there (`rules.examine`) yields all a
validation job needs, stored in the image's row, and the thumbnail listings show, stored beside the original.
Validation then judges rows (`facts_of`) and reads an object again only for rows ingested without facts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from pixcrawler.validation import rules
from pixcrawler.validation.hashing import to_signed, to_unsigned

THUMBNAIL_TYPE = "image/webp"
THUMBNAIL_QUALITY = 75
THUMBNAIL_EFFORT = 2
"""libwebp `method` (0 fastest, 6 smallest): at 256 px a low effort costs little in size and much less CPU."""


@dataclass(frozen=True, slots=True)
class Ingested:
    """An image's facts as row columns, and its encoded thumbnail when the pixels decoded."""

    columns: dict[str, Any]
    thumbnail: bytes | None


def take(data: bytes, max_pixels: int) -> Ingested:
    """Examine downloaded bytes once; the columns are JSON-ready (they travel in one jsonb parameter). When the
    header opened, they include its width, height and format, so a row's facts all come from one reading."""
    facts = rules.examine(io.BytesIO(data), max_pixels)
    thumbnail = None
    if facts.thumbnail is not None:
        encoded = io.BytesIO()
        facts.thumbnail.save(encoded, "WEBP", quality=THUMBNAIL_QUALITY, method=THUMBNAIL_EFFORT)
        thumbnail = encoded.getvalue()
    header = {"width": facts.width, "height": facts.height, "format": facts.format} if facts.mode else {}
    columns = {
        **header,
        "decodable": facts.problem is None,
        "decode_error": None if facts.problem is None else facts.problem.as_json(),
        "mode": facts.mode,
        "orientation": facts.orientation,
        "blank_variance": facts.variance,
        "phash": None if facts.phash is None else to_signed(facts.phash),
        "has_thumbnail": thumbnail is not None,
    }
    return Ingested(columns, thumbnail)


def facts_of(
    *,
    width: int | None,
    height: int | None,
    format: str | None,
    mode: str | None,
    orientation: int | None,
    decode_error: dict[str, str] | None,
    blank_variance: float | None,
    phash: int | None,
) -> rules.Facts:
    """The facts an image row holds (one with `decodable` set). Without a mode the header never opened, and
    the row's width, height and format (from the download's header check) did not come from these facts."""
    problem = None if decode_error is None else rules.Problem(rules.Code(decode_error["code"]), decode_error["message"])
    if mode is None:
        return rules.Facts(problem=problem)
    return rules.Facts(
        width=width,
        height=height,
        format=format,
        mode=mode,
        orientation=orientation,
        problem=problem,
        phash=None if phash is None else to_unsigned(phash),
        variance=blank_variance,
    )
