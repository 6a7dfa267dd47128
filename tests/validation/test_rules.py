"""Each rule on its own, on generated images read through the same streaming entry point the worker uses."""

from __future__ import annotations

import io
from typing import Any

import pytest

from pixcrawler.schemas.validation import ValidationRules
from pixcrawler.validation.rules import Inspection, inspect
from pixcrawler_local import samples
from tests.validation import images

MAX_PIXELS = 50_000_000


def check(data: bytes, max_pixels: int = MAX_PIXELS, **rules: Any) -> Inspection:
    return inspect(io.BytesIO(data), len(data), ValidationRules.model_validate(rules), max_pixels)


def codes(inspection: Inspection) -> set[str]:
    return {error["code"] for error in inspection.errors}


def test_a_good_jpeg_passes_with_its_facts_and_hash() -> None:
    result = check(samples.jpeg(1, 320, 200))
    assert result.valid and result.errors == []
    assert (result.width, result.height, result.format) == (320, 200, "jpeg")
    assert result.phash is not None and 0 <= result.phash < 2**64


@pytest.mark.parametrize(
    ("rules", "size", "expected"),
    [
        ({"min_width": 300}, (256, 400), {"width_too_small"}),
        ({"min_height": 300}, (400, 256), {"height_too_small"}),
        ({"max_width": 200}, (256, 100), {"width_too_large"}),
        ({"max_height": 200}, (100, 256), {"height_too_large"}),
        ({"min_aspect_ratio": 1.0}, (100, 200), {"aspect_ratio_too_small"}),
        ({"max_aspect_ratio": 1.5}, (400, 200), {"aspect_ratio_too_large"}),
        ({"min_width": 500, "min_height": 500}, (256, 256), {"width_too_small", "height_too_small"}),
        ({"min_width": 256, "max_width": 256, "min_aspect_ratio": 1, "max_aspect_ratio": 1}, (256, 256), set()),
    ],
)
def test_dimension_and_aspect_rules(rules: dict[str, Any], size: tuple[int, int], expected: set[str]) -> None:
    result = check(samples.jpeg(2, *size), **rules)
    assert codes(result) == expected
    assert all(error["message"] for error in result.errors)


def test_max_file_size_rejects_without_reading_the_stream() -> None:
    class Unreadable(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            raise AssertionError("an oversized file must not be downloaded")

    data = samples.jpeg(3)
    result = inspect(Unreadable(data), len(data), ValidationRules(max_file_size=len(data) - 1), MAX_PIXELS)
    assert codes(result) == {"file_too_large"}
    assert check(data, max_file_size=len(data)).valid


def test_allowed_formats() -> None:
    png = samples.png(4)
    assert codes(check(png, allowed_formats=["jpeg"])) == {"format_not_allowed"}
    assert check(png, allowed_formats=["jpeg", "png"]).valid
    webp = samples.encode(samples.picture(4), "WEBP")
    result = check(webp, allowed_formats=["webp"])
    assert result.valid and result.format == "webp"


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_truncated_jpeg_and_png_fail_decoding(fraction: float) -> None:
    for data in (samples.jpeg(5, 1024, 768), samples.png(5, 300, 300)):
        result = check(images.truncated(data, fraction))
        assert codes(result) == {"undecodable"}, (fraction, result.errors)


def test_corrupt_scan_data_fails_but_only_when_decodability_is_required() -> None:
    data = images.corrupted(samples.jpeg(6, 512, 512))
    assert codes(check(data)) == {"undecodable"}
    lenient = check(data, decodable=False)
    assert lenient.valid and lenient.width == 512 and lenient.phash is None


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff" + b"\0" * 50])
def test_garbage_is_undecodable_whatever_the_rules(data: bytes) -> None:
    assert codes(check(data)) == {"undecodable"}
    assert codes(check(data, decodable=False)) == {"undecodable"}


def test_a_decompression_bomb_fails_without_being_decoded() -> None:
    bomb = images.png_claiming(100_000, 100_000)
    assert len(bomb) < 200
    result = check(bomb)
    assert codes(result) == {"decompression_bomb"}
    assert "exceeds limit" in result.errors[0]["message"]


def test_the_pixel_limit_applies_at_once_not_only_at_twice_the_limit() -> None:
    data = samples.jpeg(7, 600, 600)
    assert codes(check(data, max_pixels=300_000)) == {"decompression_bomb"}
    assert check(data, max_pixels=360_000).valid


def test_blank_images_fail_only_when_asked() -> None:
    flat = images.blank()
    assert check(flat).valid
    result = check(flat, reject_blank=True)
    assert codes(result) == {"blank"}
    assert check(samples.png(8), reject_blank=True).valid
    assert check(flat, reject_blank=True, blank_variance_threshold=0.1).valid


def test_modes_other_than_rgb_are_hashed() -> None:
    picture = samples.picture(9)
    for mode, image_format in (("L", "PNG"), ("P", "GIF"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("1", "BMP")):
        result = check(samples.encode(picture.convert(mode), image_format))
        assert result.valid and result.phash is not None, mode
