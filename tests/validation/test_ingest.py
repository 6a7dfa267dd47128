"""The thumbnail each image gets at ingest: encoded from the decode, or the original's own bytes when those
already are one (small, upright, fitting the box, in a format every browser shows)."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image as PILImage
from PIL import ImageChops, ImageStat

from pixcrawler import object_keys
from pixcrawler.validation import ingest, rules
from pixcrawler.validation.hashing import dhash, distance
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


def progressive_jpeg() -> bytes:
    return samples.encode(samples.picture(8, 640, 480), "JPEG", progressive=True)


COLOUR_JPEGS = {
    "photo": samples.jpeg(9, 1024, 768),
    "own-thumbnail": samples.jpeg(10, 256, 256),
    "progressive": progressive_jpeg(),
    "exif-rotated": rotated_jpeg(),
}


@pytest.mark.parametrize("data", COLOUR_JPEGS.values(), ids=COLOUR_JPEGS.keys())
def test_a_jpegs_facts_do_not_depend_on_whether_a_preview_is_made(data: bytes) -> None:
    """The crawl decodes to the luma plane alone when it needs no preview, and to YCbCr when it does; the hash
    and the blank figure are the luma plane's either way, so validation's own decode agrees with the crawl's."""
    plain = rules.examine(io.BytesIO(data), MAX_PIXELS)
    with_preview = rules.examine(io.BytesIO(data), MAX_PIXELS, lambda _: True)
    assert plain.thumbnail is None and with_preview.thumbnail is not None
    assert plain == with_preview and plain.mode == "RGB"


@pytest.mark.parametrize("seed", range(12))
def test_facts_taken_before_the_luma_decode_still_compare(seed: int) -> None:
    """Rows hashed by earlier versions (the picture decoded to RGB, then Pillow's greyscale of it) stay a bit
    or so from the same picture hashed now, far inside any near-duplicate threshold, with the same blank figure
    to within a per cent."""
    data = samples.jpeg(seed, 512, 384)
    with PILImage.open(io.BytesIO(data)) as image:
        image.draft(None, (256, 192))
        earlier = image.convert("L").resize((rules.THUMB_SIZE, rules.THUMB_SIZE), PILImage.Resampling.BOX)
    now = rules.examine(io.BytesIO(data), MAX_PIXELS)
    assert now.phash is not None and now.variance is not None
    assert distance(now.phash, dhash(earlier)) <= 2
    assert now.variance == pytest.approx(rules.variance(earlier), rel=0.01)


def test_a_jpeg_preview_shows_the_colours_of_an_rgb_decode() -> None:
    data = samples.jpeg(11, 1024, 768)
    taken = ingest.take(data, MAX_PIXELS)
    assert taken.thumbnail is not None
    with PILImage.open(io.BytesIO(data)) as image:
        image.draft("RGB", (256, 192))
        reference = image.convert("RGB")
    with PILImage.open(io.BytesIO(taken.thumbnail)) as preview:
        assert (preview.mode, preview.size) == ("RGB", reference.size)
        difference = ImageChops.difference(preview, reference)
    assert max(ImageStat.Stat(difference).mean) < 3
