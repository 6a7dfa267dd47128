"""Per-image checks against a job's `ValidationRules`, plus the perceptual hash the duplicate pass needs.

Checking is two steps. `examine` decodes once, at reduced size, and records `Facts` that hold whatever the
rules: that decode proves the pixel data decodes (a truncated or corrupt stream fails in `load()`, which
`verify()` would miss), feeds the hash, measures blankness and yields the thumbnail. JPEGs use `draft()`,
which decodes every coefficient at 1/2 to 1/8 scale: as strict as a full decode about corruption, about 1.7
times faster and far smaller in memory; a colour JPEG's greyscale is its own luma plane. `judge` then
applies a job's rules to the facts, touching no pixel. The crawl examines each image at ingest and stores
its facts on the row, so validation usually only judges.
"""

from __future__ import annotations

import enum
import operator
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import IO, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from pixcrawler import snapstart
from pixcrawler.schemas.validation import ValidationRules
from pixcrawler.validation.hashing import dhash

SPOOL_BYTES = 8 * 1024 * 1024
COPY_BYTES = 1024 * 1024
THUMB_SIZE = 64
"""The greyscale the hash and the blank figure are computed on."""
THUMBNAIL_SIZE = 256
"""The longest side of the stored thumbnail; the decode is reduced to just cover it."""
ORIENTATION_TAG = 0x0112
SQUARES = [value * value for value in range(256)]
# Pillow names the multi-picture JPEGs cameras write "MPO"; to a dataset they are JPEGs.
FORMAT_ALIASES = {"MPO": "jpeg"}
# Raised by Pillow's decoders on malformed data; anything else is a bug or an infrastructure error.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError)

warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
"""Pillow warns about an image above `MAX_IMAGE_PIXELS` (and raises above twice that); every opener here
(the download's header check, `examine`) refuses or fails such an image itself, naming it, so the warning
would only repeat that in the function's log."""

snapstart.before_snapshot(Image.init)
"""Pillow imports its format plugins on the first open (about 60 ms): the crawl, validation and export
functions, which all examine images through this module, do it into the snapshot."""


class Readable(Protocol):
    """A file or an S3 `StreamingBody`: something to read from, not necessarily seekable."""

    def read(self, size: int, /) -> bytes: ...


class Code(enum.StrEnum):
    """Machine-readable reasons an image failed, stored in `images.validation_errors[].code`."""

    MISSING = "missing"
    FILE_TOO_LARGE = "file_too_large"
    UNDECODABLE = "undecodable"
    DECOMPRESSION_BOMB = "decompression_bomb"
    FORMAT_NOT_ALLOWED = "format_not_allowed"
    WIDTH_TOO_SMALL = "width_too_small"
    WIDTH_TOO_LARGE = "width_too_large"
    HEIGHT_TOO_SMALL = "height_too_small"
    HEIGHT_TOO_LARGE = "height_too_large"
    ASPECT_RATIO_TOO_SMALL = "aspect_ratio_too_small"
    ASPECT_RATIO_TOO_LARGE = "aspect_ratio_too_large"
    BLANK = "blank"
    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"


@dataclass(frozen=True, slots=True)
class Problem:
    code: Code
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


@dataclass(frozen=True, slots=True)
class Inspection:
    """What one image revealed; `phash` is unsigned and absent when the pixels could not be decoded."""

    problems: tuple[Problem, ...] = ()
    width: int | None = None
    height: int | None = None
    format: str | None = None
    phash: int | None = None

    @property
    def errors(self) -> list[dict[str, str]]:
        """The problems as stored in `images.validation_errors`."""
        return [problem.as_json() for problem in self.problems]

    @property
    def valid(self) -> bool:
        return not self.problems


def inspect(stream: Readable, file_size: int, rules: ValidationRules, max_pixels: int) -> Inspection:
    """Check one image read from a (possibly non-seekable) stream.

    An oversized file is rejected before a byte is read. Otherwise the stream is spooled (memory up to
    8 MiB, then a temporary file) because image decoders seek.
    """
    if too_large := _size_problem(rules, file_size):
        return Inspection((too_large,))
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        while chunk := stream.read(COPY_BYTES):
            spool.write(chunk)
        spool.seek(0)
        return judge(examine(spool, max_pixels), rules)


@dataclass(frozen=True, slots=True)
class Facts:
    """What one reduced decode establishes about an image, whatever a job's rules say: the crawl stores it on
    the image row at ingest, so validation can judge without reading the object again.

    `width`, `height`, `format` and `mode` are None when not even the header opens; `problem` is the
    `undecodable` or `decompression_bomb` reason; `phash` (unsigned) and `variance` exist only when the
    pixels decoded; `thumbnail` is the decoded picture reduced to fit `THUMBNAIL_SIZE`, upright."""

    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    orientation: int | None = None
    problem: Problem | None = None
    phash: int | None = None
    variance: float | None = None
    thumbnail: Image.Image | None = field(default=None, compare=False, repr=False)


def examine(file: IO[bytes], max_pixels: int, preview_if: Callable[[Facts], bool] | None = None) -> Facts:
    """Open and decode once, at reduced size: the facts every rule is judged from, and the preview too when
    `preview_if` says so of the header's facts (the crawl skips it for an original that is its own thumbnail).
    Neither the decode's scale nor the greyscale the hash is taken from depends on the preview, so the facts
    of one image are the same whoever examines it."""
    # Pillow's protection is a module setting, set alike by every caller. Pillow raises above twice the limit
    # and only warns above it; the check below makes every image above the limit fail. (Escalating the warning
    # with `warnings.catch_warnings` would not do: its filters are process-wide, and the crawl examines images
    # in many threads at once.)
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        image = Image.open(file)
    except Image.DecompressionBombError as error:
        return Facts(problem=Problem(Code.DECOMPRESSION_BOMB, str(error)))
    except UnidentifiedImageError:
        return Facts(problem=Problem(Code.UNDECODABLE, "not a recognisable image file"))
    except DECODE_ERRORS as error:
        return Facts(problem=Problem(Code.UNDECODABLE, f"unreadable image header: {error}"))
    if (pixels := max(1, image.width) * max(1, image.height)) > max_pixels:
        image.close()
        message = f"Image size ({pixels} pixels) exceeds limit of {max_pixels} pixels, could be decompression bomb "
        return Facts(problem=Problem(Code.DECOMPRESSION_BOMB, message + "DOS attack."))
    with image:
        width, height = image.size
        image_format = FORMAT_ALIASES.get(image.format or "", (image.format or "unknown").lower())
        header = Facts(width, height, image_format, image.mode, exif_orientation(image))
        wants_preview = preview_if is not None and preview_if(header)
        try:
            reduced = _reduced(image, "YCbCr" if wants_preview else "L")
            gray = _luma(reduced).resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BOX)
        except DECODE_ERRORS as error:
            return replace(header, problem=Problem(Code.UNDECODABLE, f"the image data does not decode: {error}"))
        preview = _thumbnail(reduced, header.orientation) if wants_preview else None
    return replace(header, phash=dhash(gray), variance=variance(gray), thumbnail=preview)


def variance(gray: Image.Image) -> float:
    """The blank figure: the population variance of a greyscale's pixel values. The same float as Pillow's
    `ImageStat.Stat(gray).var[0]` (its sums are whole numbers, exact in either), in half the interpreter time."""
    histogram = gray.histogram()
    count = sum(histogram)
    total = sum(map(operator.mul, range(256), histogram))
    squares = sum(map(operator.mul, SQUARES, histogram))
    return (squares - total**2.0 / count) / count


def judge(facts: Facts, rules: ValidationRules, file_size: int | None = None) -> Inspection:
    """Apply a job's rules to an image's facts: what `inspect` concludes, without touching a pixel."""
    if file_size is not None and (too_large := _size_problem(rules, file_size)):
        return Inspection((too_large,))
    if facts.width is None or facts.height is None or facts.format is None:
        return Inspection((facts.problem,) if facts.problem else ())
    problems = _header_problems(rules, facts.width, facts.height, facts.format)
    if facts.problem is not None:
        if rules.decodable:
            problems.append(facts.problem)
        return Inspection(tuple(problems), facts.width, facts.height, facts.format)
    if rules.reject_blank and facts.variance is not None and facts.variance < rules.blank_variance_threshold:
        message = f"pixel variance {facts.variance:.1f} is below {rules.blank_variance_threshold}"
        problems.append(Problem(Code.BLANK, message))
    return Inspection(tuple(problems), facts.width, facts.height, facts.format, facts.phash)


def _size_problem(rules: ValidationRules, file_size: int) -> Problem | None:
    if rules.max_file_size is not None and file_size > rules.max_file_size:
        return Problem(Code.FILE_TOO_LARGE, f"{file_size} bytes exceeds {rules.max_file_size}")
    return None


def exif_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation tag (1-8) when present and sane; a broken EXIF block is no reason to reject."""
    try:
        value = image.getexif().get(ORIENTATION_TAG)
    except DECODE_ERRORS:
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _reduced(image: Image.Image, colour: str) -> Image.Image:
    """The whole picture, decoded at the smallest JPEG scale that still covers a THUMBNAIL_SIZE thumbnail.

    `draft()` is asked for the thumbnail's own aspect, so it picks the deepest reduction that still covers it;
    it decodes every coefficient even so, which is what catches a truncated or corrupt stream. A colour JPEG
    comes out as `colour`: its luma plane alone (`L`) when no preview is wanted, which skips the colour
    planes' inverse transforms and the conversion to RGB (half the decode's CPU at 256 px), or `YCbCr` with it;
    other images keep their mode."""
    width, height = image.size
    scale = THUMBNAIL_SIZE / max(width, height, 1)
    image.draft(colour, (max(1, int(width * scale)), max(1, int(height * scale))))
    image.load()
    return image


def _luma(reduced: Image.Image) -> Image.Image:
    """The greyscale the hash and the blank figure are taken from. A colour JPEG's is its own luma plane,
    whichever way it was decoded, so its facts do not depend on whether a preview was made; other images'
    is Pillow's ITU-R 601 luma of their colours, the same weights the JPEG's encoder used."""
    if reduced.mode == "YCbCr":
        return reduced.getchannel(0)
    return reduced if reduced.mode == "L" else reduced.convert("L")


def _thumbnail(reduced: Image.Image, orientation: int | None) -> Image.Image | None:
    """The picture upright, fitting THUMBNAIL_SIZE; None for the rare mode Pillow cannot show as RGB, which
    costs the listing a preview, not the image its validity. A JPEG's stays in the YCbCr it was decoded to,
    which the thumbnail's JPEG encoder takes as it is, with no conversion either way."""
    if reduced.mode == "YCbCr":
        mode = "YCbCr"
    else:
        mode = "RGBA" if "A" in reduced.getbands() or "transparency" in reduced.info else "RGB"
    try:
        picture = reduced.convert(mode)
        picture.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BICUBIC)
    except DECODE_ERRORS:
        return None
    return ImageOps.exif_transpose(picture) if orientation not in (None, 1) else picture


def _header_problems(rules: ValidationRules, width: int, height: int, image_format: str) -> list[Problem]:
    problems: list[Problem] = []
    if rules.allowed_formats is not None and image_format not in rules.allowed_formats:
        allowed = ", ".join(rules.allowed_formats)
        problems.append(Problem(Code.FORMAT_NOT_ALLOWED, f"format {image_format} is not one of {allowed}"))
    checks = (
        ("width", width, rules.min_width, rules.max_width, Code.WIDTH_TOO_SMALL, Code.WIDTH_TOO_LARGE),
        ("height", height, rules.min_height, rules.max_height, Code.HEIGHT_TOO_SMALL, Code.HEIGHT_TOO_LARGE),
        (
            "aspect ratio",
            width / height if height else 0.0,
            rules.min_aspect_ratio,
            rules.max_aspect_ratio,
            Code.ASPECT_RATIO_TOO_SMALL,
            Code.ASPECT_RATIO_TOO_LARGE,
        ),
    )
    for name, value, low, high, too_small, too_large in checks:
        if low is not None and value < low:
            problems.append(Problem(too_small, f"{name} {value:g} is below the minimum {low:g}"))
        if high is not None and value > high:
            problems.append(Problem(too_large, f"{name} {value:g} is above the maximum {high:g}"))
    return problems
