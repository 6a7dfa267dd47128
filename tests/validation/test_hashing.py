"""The hash and the blank figure stay the definitions stored facts were taken with: facts from before a faster
computation must still compare with facts taken after it."""

from __future__ import annotations

import random

import pytest
from PIL import Image, ImageStat

from pixcrawler.validation.hashing import dhash
from pixcrawler.validation.rules import THUMB_SIZE, variance


def greyscales() -> list[Image.Image]:
    rng = random.Random(15)
    noise = [bytes(rng.randrange(256) for _ in range(THUMB_SIZE * THUMB_SIZE)) for _ in range(20)]
    flat = [Image.new("L", (THUMB_SIZE, THUMB_SIZE), value) for value in (0, 9, 255)]
    ramp = Image.linear_gradient("L").resize((THUMB_SIZE, THUMB_SIZE))
    return [Image.frombytes("L", (THUMB_SIZE, THUMB_SIZE), data) for data in noise] + flat + [ramp, ramp.rotate(90)]


def bit_by_bit(gray: Image.Image) -> int:
    """The dHash as first defined: each row's eight neighbour comparisons shifted in, first row first."""
    pixels = gray.convert("L").resize((9, 8), Image.Resampling.BOX).tobytes()
    value = 0
    for row in range(8):
        for column in range(8):
            value = (value << 1) | (pixels[row * 9 + column] > pixels[row * 9 + column + 1])
    return value


@pytest.mark.parametrize("gray", greyscales())
def test_the_dhash_is_the_bit_by_bit_definition(gray: Image.Image) -> None:
    assert dhash(gray) == bit_by_bit(gray)
    assert dhash(gray.convert("RGB")) == bit_by_bit(gray.convert("RGB"))


@pytest.mark.parametrize("gray", greyscales())
def test_the_blank_figure_is_pillows_variance_to_the_last_bit(gray: Image.Image) -> None:
    assert variance(gray) == ImageStat.Stat(gray).var[0]
