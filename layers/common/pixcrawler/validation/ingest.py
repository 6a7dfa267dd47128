"""The facts the crawl records of each image as it stores it, and how validation reads them back.

The crawl worker already holds every image's bytes: one reduced decode there (`rules.examine`) yields all a
validation job needs, stored in the image's row, and the thumbnail listings show, stored beside the original.
Validation then judges rows (`facts_of`) and reads an object again only for rows ingested without facts.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image as PILImage

from pixcrawler import object_keys
from pixcrawler.models import Image
from pixcrawler.validation import rules
from pixcrawler.validation.hashing import to_signed, to_unsigned

THUMBNAIL_JPEG_QUALITY = 80
THUMBNAIL_WEBP_QUALITY = 75
THUMBNAIL_WEBP_EFFORT = 0
"""libwebp `method` (0 fastest, 6 smallest). Measured at 256x192 (benchmarks/ingest.py): 0.8 ms and 1.8 KB at
0, 1.5 ms and 1.3 KB at 2, 3.0 ms and 1.2 KB at the default 4."""
OWN_THUMBNAIL_MAX_BYTES = 48 * 1024
"""An original this small that already fits the thumbnail box is its own thumbnail."""
OWN_THUMBNAIL_FORMATS = frozenset({"jpeg", "webp"})
OWN_THUMBNAIL_MODES = frozenset({"RGB", "L"})


@dataclass(frozen=True, slots=True)
class Ingested:
    """An image's facts as row columns, and the thumbnail to store beside it: encoded from the decode, or None
    when the pixels did not decode or the original is its own (`thumbnail_format` says which)."""

    columns: dict[str, Any]
    thumbnail: bytes | None

    @property
    def thumbnail_format(self) -> str | None:
        """`jpeg`, `webp` or `original`, as `images.thumbnail_format` stores it."""
        return self.columns["thumbnail_format"]


def take(data: bytes, max_pixels: int) -> Ingested:
    """Examine downloaded bytes once; the columns are JSON-ready (they travel in one jsonb parameter). When the
    header opened, they include its width, height and format, so a row's facts all come from one reading."""
    facts = rules.examine(io.BytesIO(data), max_pixels, lambda header: not _is_own_thumbnail(header, len(data)))
    if facts.thumbnail is not None:
        thumbnail, thumbnail_format = _encode(facts.thumbnail)
    elif facts.phash is not None and _is_own_thumbnail(facts, len(data)):
        thumbnail, thumbnail_format = None, object_keys.OWN_THUMBNAIL
    else:
        thumbnail, thumbnail_format = None, None
    header = {"width": facts.width, "height": facts.height, "format": facts.format} if facts.mode else {}
    columns = {
        **header,
        "decodable": facts.problem is None,
        "decode_error": None if facts.problem is None else facts.problem.as_json(),
        "mode": facts.mode,
        "orientation": facts.orientation,
        "blank_variance": facts.variance,
        "phash": None if facts.phash is None else to_signed(facts.phash),
        "thumbnail_format": thumbnail_format,
    }
    return Ingested(columns, thumbnail)


def _is_own_thumbnail(facts: rules.Facts, size: int) -> bool:
    """Whether the original serves as its own thumbnail, instead of one encoded and stored beside it.

    A small, upright JPEG or WebP that already fits `THUMBNAIL_SIZE` shows the same pixels as any preview
    made of it: re-encoding would cost the crawl about 0.2 ms of CPU per image (a quarter of its ingest at
    256 px) for a copy one generation worse, and storing its bytes again a second PUT (about 0.2 ms more) and
    a second object. The bytes cap keeps listings light whatever the quality the original was saved at."""
    fits = (facts.width or 0) <= rules.THUMBNAIL_SIZE and (facts.height or 0) <= rules.THUMBNAIL_SIZE
    upright = facts.orientation in (None, 1)
    kind = facts.mode in OWN_THUMBNAIL_MODES and facts.format in OWN_THUMBNAIL_FORMATS
    return fits and upright and kind and size <= OWN_THUMBNAIL_MAX_BYTES


def _encode(preview: PILImage.Image) -> tuple[bytes, str]:
    """JPEG, unless the preview has transparency, which JPEG cannot hold: at 256 px libjpeg-turbo encodes in
    under 0.1 ms where WebP at its fastest takes 0.8 ms, and the crawl pays that on every image
    (benchmarks/ingest.py). The JPEG is larger (about 8 KB against 2 KB): storage is cheaper than CPU here."""
    encoded = io.BytesIO()
    if preview.mode == "RGBA":
        preview.save(encoded, "WEBP", quality=THUMBNAIL_WEBP_QUALITY, method=THUMBNAIL_WEBP_EFFORT)
        return encoded.getvalue(), "webp"
    preview.save(encoded, "JPEG", quality=THUMBNAIL_JPEG_QUALITY)
    return encoded.getvalue(), "jpeg"


FACT_COLUMNS = (
    Image.width,
    Image.height,
    Image.format,
    Image.mode,
    Image.orientation,
    Image.decode_error,
    Image.blank_variance,
    Image.phash,
)
"""What `facts_of` takes, in its order: select these and pass a row's values on."""


def facts_of(
    width: int | None,
    height: int | None,
    image_format: str | None,
    mode: str | None,
    orientation: int | None,
    decode_error: dict[str, str] | None,
    blank_variance: float | None,
    phash: int | None,
) -> rules.Facts:
    """The facts an image row holds (one with `decodable` set). Without a mode the header never opened: the
    row's width, height and format then come from the download's header check, not from these facts, and
    the facts' problem alone is the verdict, as when `rules.examine` reads the object."""
    problem = None if decode_error is None else rules.Problem(rules.Code(decode_error["code"]), decode_error["message"])
    if mode is None:
        return rules.Facts(problem=problem)
    unsigned = None if phash is None else to_unsigned(phash)
    return rules.Facts(width, height, image_format, mode, orientation, problem, unsigned, blank_variance)
