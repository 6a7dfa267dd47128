"""Export transforms on planted images: img2dataset's sizes, upright, 8-bit RGB whatever the input."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from pixcrawler.exports.transform import Transform, Transformed, TransformError
from pixcrawler.schemas.export import ExportOptions

RED, BLUE, WHITE = (200, 30, 30), (30, 30, 200), (255, 255, 255)
MAX_PIXELS = 50_000_000


def transform(**options: Any) -> Transform:
    made = Transform.of(ExportOptions(**options), MAX_PIXELS)
    assert made is not None
    return made


def encoded(image: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def opened(result: Transformed) -> Image.Image:
    """The output as a reader sees it, checked against what the transform reported."""
    image = Image.open(io.BytesIO(result.data))
    image.load()
    assert (image.width, image.height, (image.format or "").lower()) == (result.width, result.height, result.format)
    assert image.mode == "RGB"
    return image


# Sizes img2dataset's Resizer (img2dataset 1.47, albumentations 1.4) produced for these inputs at image_size 64,
# read off its output: (mode, resize_only_if_bigger) -> (width, height). Rule: scale the shorter side
# (keep_ratio, center_crop) or the longer side (keep_ratio_largest, border) to 64, each side
# max(1, round(side * scale)); crop or pad to 64x64; with resize_only_if_bigger nothing happens to an image
# whose reference side is not above 64.
IMG2DATASET_SIZES = {
    (100, 50): {
        ("keep_ratio", False): (128, 64),
        ("keep_ratio", True): (100, 50),
        ("keep_ratio_largest", False): (64, 32),
        ("keep_ratio_largest", True): (64, 32),
        ("center_crop", False): (64, 64),
        ("center_crop", True): (100, 50),
        ("border", False): (64, 64),
        ("border", True): (64, 64),
    },
    (333, 500): {
        ("keep_ratio", False): (64, 96),
        ("keep_ratio_largest", False): (43, 64),
        ("center_crop", True): (64, 64),
        ("border", True): (64, 64),
    },
    (1024, 768): {("keep_ratio", False): (85, 64), ("keep_ratio_largest", True): (64, 48)},
    (101, 37): {("keep_ratio", False): (175, 64), ("keep_ratio_largest", False): (64, 23)},
    (10, 7): {
        ("keep_ratio", False): (91, 64),
        ("keep_ratio_largest", False): (64, 45),
        ("keep_ratio", True): (10, 7),
        ("keep_ratio_largest", True): (10, 7),
        ("center_crop", True): (10, 7),
        ("border", True): (10, 7),
    },
    (250, 3): {("keep_ratio_largest", False): (64, 1), ("center_crop", False): (64, 64)},
}
CASES = [
    (size, mode, bigger, out) for size, cases in IMG2DATASET_SIZES.items() for (mode, bigger), out in cases.items()
]


@pytest.mark.parametrize(("size", "mode", "bigger", "expected"), CASES)
def test_each_mode_gives_img2dataset_s_size(
    size: tuple[int, int], mode: str, bigger: bool, expected: tuple[int, int]
) -> None:
    source = encoded(Image.new("RGB", size, RED))

    result = transform(image_size=64, resize_mode=mode, resize_only_if_bigger=bigger, encode_format="png")(source)

    assert opened(result).size == expected


def test_border_pads_with_white_around_the_centred_picture() -> None:
    result = transform(image_size=64, resize_mode="border")(encoded(Image.new("RGB", (100, 50), RED)))

    image = opened(result)
    assert image.size == (64, 64)
    assert image.getpixel((32, 0)) == WHITE and image.getpixel((32, 63)) == WHITE  # 16 rows above, 16 below
    assert image.getpixel((32, 15)) == WHITE and image.getpixel((32, 16)) == RED and image.getpixel((32, 47)) == RED


def test_exif_orientation_is_applied_before_resizing() -> None:
    stored = Image.new("RGB", (64, 32), RED)
    stored.paste(BLUE, (32, 0, 64, 32))  # left half red, right half blue, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the stored left half is on top
    source = encoded(stored, "JPEG", quality=95, exif=exif)

    image = opened(transform(image_size=16, resize_mode="keep_ratio_largest")(source))

    assert image.size == (8, 16)  # upright 32x64, longer side to 16
    top_red, _, top_blue = image.getpixel((4, 2))  # type: ignore[misc]
    bottom_red, _, bottom_blue = image.getpixel((4, 13))  # type: ignore[misc]
    assert top_red > 150 > top_blue and bottom_blue > 150 > bottom_red


def test_palette_transparency_is_composited_on_white() -> None:
    stored = Image.new("P", (20, 20), 1)
    stored.putpalette([0, 0, 0, *RED] + [0] * 762)
    stored.paste(0, (0, 0, 10, 20))
    source = encoded(stored, transparency=0)  # palette index 0 is transparent

    image = opened(transform(encode_format="png")(source))

    assert image.getpixel((2, 10)) == WHITE and image.getpixel((15, 10)) == RED


def test_alpha_is_composited_on_white() -> None:
    source = encoded(Image.new("RGBA", (20, 20), (255, 0, 0, 128)))

    image = opened(transform(encode_format="png")(source))

    assert image.getpixel((10, 10)) == (255, 127, 127)


def test_cmyk_becomes_rgb() -> None:
    source = encoded(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)

    image = opened(transform(image_size=16, resize_mode="center_crop", encode_format="png")(source))

    red, green, blue = image.getpixel((8, 8))  # type: ignore[misc]
    assert image.size == (16, 16) and red > 240 and green < 15 and blue < 15


def test_sixteen_bit_greyscale_keeps_its_high_byte() -> None:
    stored = Image.new("I;16", (16, 16), 0x8000)
    stored.paste(0xFFFF, (0, 0, 8, 16))
    source = encoded(stored)
    assert Image.open(io.BytesIO(source)).mode.startswith("I")

    image = opened(transform(encode_format="png")(source))

    assert image.getpixel((2, 2)) == (255, 255, 255) and image.getpixel((12, 2)) == (128, 128, 128)


def test_a_tiny_image_is_not_enlarged_when_only_bigger_ones_are_resized() -> None:
    source = encoded(Image.new("RGB", (10, 7), RED), "JPEG", quality=90)

    result = transform(image_size=64, resize_mode="center_crop", resize_only_if_bigger=True)(source)

    assert (result.width, result.height, result.format) == (10, 7, "jpeg")
    assert result.data == source  # upright RGB JPEG kept as JPEG: copied, not re-encoded at a loss


def test_original_keeps_jpeg_png_and_webp_and_makes_png_of_anything_else() -> None:
    picture = Image.new("RGB", (40, 30), RED)
    cases = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "png", "BMP": "png"}
    for stored, expected in cases.items():
        result = transform(image_size=20, resize_mode="keep_ratio_largest")(encoded(picture, stored))
        assert (opened(result).size, result.format) == ((20, 15), expected), stored


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_encode_format_and_quality(fmt: str) -> None:
    source = encoded(Image.effect_noise((64, 64), 60).convert("RGB"))

    high = transform(encode_format=fmt, encode_quality=95)(source)
    low = transform(encode_format=fmt, encode_quality=20)(source)

    assert opened(high).size == (64, 64) and high.format == fmt
    if fmt == "png":
        assert low.data == high.data  # lossless: quality does not apply
    else:
        assert len(low.data) < len(high.data)


@pytest.mark.parametrize("data", [b"not an image", encoded(Image.new("RGB", (64, 64), RED), "JPEG")[:300]])
def test_bytes_that_do_not_decode_raise_a_readable_error(data: bytes) -> None:
    with pytest.raises(TransformError, match="does not decode"):
        transform(encode_format="png")(data)


def test_no_transform_asked_means_none() -> None:
    assert Transform.of(ExportOptions(), MAX_PIXELS) is None
