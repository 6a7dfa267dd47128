"""64-bit difference hashes (dHash): resized and re-encoded copies of a picture land a few bits apart.

PostgreSQL has no unsigned 64-bit integer, so hashes are stored as signed BIGINT and compared unsigned.
"""

from __future__ import annotations

from PIL import Image

HASH_BITS = 64
MASK = (1 << HASH_BITS) - 1
_SIGN = 1 << (HASH_BITS - 1)


def dhash(gray: Image.Image) -> int:
    """Compare each of 8x8 horizontal neighbours of a 9x8 box-filtered greyscale: one bit per brighter-left pair,
    first row first. The bits are read as one binary numeral, which costs the crawl half the interpreter time of
    shifting them in one by one (it hashes every image it stores)."""
    grey = gray if gray.mode == "L" else gray.convert("L")
    pixels = grey.resize((9, 8), Image.Resampling.BOX).tobytes()
    return int("".join("1" if pixels[i] > pixels[i + 1] else "0" for i in range(72) if i % 9 != 8), 2)


def to_signed(value: int) -> int:
    """The BIGINT that stores an unsigned 64-bit hash."""
    return value - (1 << HASH_BITS) if value & _SIGN else value


def to_unsigned(value: int) -> int:
    return value & MASK


def distance(a: int, b: int) -> int:
    """Hamming distance of two hashes, whether stored signed or not."""
    return ((a ^ b) & MASK).bit_count()
