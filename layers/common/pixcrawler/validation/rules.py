"""Per-image checks against a job's `ValidationRules`, plus the perceptual hash the duplicate pass needs.

One reduced-size greyscale decode serves three purposes: it proves the pixel data decodes (a truncated or
corrupt stream fails in `load()`, which `verify()` would miss), it feeds the hash, and it measures blankness.
JPEGs use `draft()`, which decodes every coefficient at 1/2 to 1/8 scale: as strict as a full decode about
corruption, about 1.7 times faster and far smaller in memory.
"""

from __future__ import annotations

import enum
import tempfile
import warnings
from dataclasses import dataclass
from typing import IO, Protocol

from PIL import Image, ImageStat, UnidentifiedImageError

from pixcrawler.schemas.validation import ValidationRules
from pixcrawler.validation.hashing import dhash

SPOOL_BYTES = 8 * 1024 * 1024
COPY_BYTES = 1024 * 1024
THUMB_SIZE = 64
# Pillow names the multi-picture JPEGs cameras write "MPO"; to a dataset they are JPEGs.
FORMAT_ALIASES = {"MPO": "jpeg"}
# Raised by Pillow's decoders on malformed data; anything else is a bug or an infrastructure error.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError)


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
    if rules.max_file_size is not None and file_size > rules.max_file_size:
        return Inspection((Problem(Code.FILE_TOO_LARGE, f"{file_size} bytes exceeds {rules.max_file_size}"),))
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        while chunk := stream.read(COPY_BYTES):
            spool.write(chunk)
        spool.seek(0)
        return _inspect_image(spool, rules, max_pixels)


def _inspect_image(file: IO[bytes], rules: ValidationRules, max_pixels: int) -> Inspection:
    # Pillow's protection is a module setting; escalating its warning makes every image above the limit fail,
    # not only those above twice the limit.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return Inspection((Problem(Code.DECOMPRESSION_BOMB, str(error)),))
    except UnidentifiedImageError:
        return Inspection((Problem(Code.UNDECODABLE, "not a recognisable image file"),))
    except DECODE_ERRORS as error:
        return Inspection((Problem(Code.UNDECODABLE, f"unreadable image header: {error}"),))
    with image:
        width, height = image.size
        image_format = FORMAT_ALIASES.get(image.format or "", (image.format or "unknown").lower())
        problems = _header_problems(rules, width, height, image_format)
        try:
            thumb = _reduced_greyscale(image)
        except DECODE_ERRORS as error:
            if rules.decodable:
                problems.append(Problem(Code.UNDECODABLE, f"the image data does not decode: {error}"))
            return Inspection(tuple(problems), width, height, image_format)
    if rules.reject_blank:
        variance = ImageStat.Stat(thumb).var[0]
        if variance < rules.blank_variance_threshold:
            message = f"pixel variance {variance:.1f} is below {rules.blank_variance_threshold}"
            problems.append(Problem(Code.BLANK, message))
    return Inspection(tuple(problems), width, height, image_format, dhash(thumb))


def _reduced_greyscale(image: Image.Image) -> Image.Image:
    """A THUMB_SIZE² greyscale of the whole picture (aspect ignored: hashing and variance do not need it)."""
    image.draft("L", (THUMB_SIZE, THUMB_SIZE))
    image.load()
    return image.convert("L").resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BOX)


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
