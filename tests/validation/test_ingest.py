"""The thumbnail each image gets at ingest: encoded from the decode, or the original's own bytes when those
already are one (small, upright, fitting the box, in a format every browser shows)."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image as PILImage

from pixcrawler import object_keys
from pixcrawler.validation import ingest, rules
from pixcrawler_local import samples

MAX_PIXELS = 50_000_000


def noise_jpeg(size: int) -> bytes:
    """A JPEG of random pixels at quality 100: a few pixels, many bytes."""
    rng = random.Random(size)
    picture = PILImage.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    return samples.encode(picture, "JPEG", quality=100)


def rotated_jpeg() -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = 6
    return samples.encode(samples.picture(3, 200, 100), "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize(
    "data",
    [
        samples.jpeg(1, 256, 192),
        samples.encode(samples.picture(2, 120, 80).convert("L"), "JPEG"),
        samples.encode(samples.picture(4, 256, 256), "WEBP"),
    ],
    ids=["jpeg", "grayscale-jpeg", "webp"],
)
def test_an_original_that_already_is_a_thumbnail_is_its_own(data: bytes) -> None:
    """Nothing to store beside it: its key serves as its thumbnail's (`object_keys.thumbnail_key`)."""
    taken = ingest.take(data, MAX_PIXELS)
    assert (taken.thumbnail, taken.thumbnail_format) == (None, "original")
    assert object_keys.thumbnail_key("projects/1/a.jpg", "original") == "projects/1/a.jpg"
    assert taken.columns["decodable"] is True and taken.columns["phash"] is not None


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (samples.jpeg(5, 1024, 768), (256, 192)),
        (samples.jpeg(6, 257, 100), (256, 100)),
        (rotated_jpeg(), (100, 200)),
        (samples.png(7, 200, 150), (200, 150)),
        (noise_jpeg(200), (200, 200)),
    ],
    ids=["too-large", "one-pixel-too-wide", "exif-rotated", "png", "over-the-byte-cap"],
)
def test_any_other_original_gets_a_jpeg_preview_encoded_from_its_decode(data: bytes, size: tuple[int, int]) -> None:
    taken = ingest.take(data, MAX_PIXELS)
    assert taken.thumbnail is not None and taken.thumbnail != data
    assert taken.thumbnail_format == "jpeg"
    with PILImage.open(io.BytesIO(taken.thumbnail)) as preview:
        assert (preview.format, preview.size) == ("JPEG", size)
    assert max(size) <= rules.THUMBNAIL_SIZE


def test_the_byte_cap_case_is_really_over_the_cap() -> None:
    assert len(noise_jpeg(200)) > ingest.OWN_THUMBNAIL_MAX_BYTES
