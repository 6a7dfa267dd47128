"""64-bit difference hashes (dHash): resized and re-encoded copies of a picture land a few bits apart.

PostgreSQL has no unsigned 64-bit integer, so hashes are stored as signed BIGINT and compared unsigned.
"""

from __future__ import annotations

from PIL import Image

HASH_BITS = 64
MASK = (1 << HASH_BITS) - 1
_SIGN = 1 << (HASH_BITS - 1)


def dhash(gray: Image.Image) -> int:
    """Compare each of 8x8 horizontal neighbours of a 9x8 box-filtered greyscale: one bit per brighter-left pair."""
    pixels = gray.convert("L").resize((9, 8), Image.Resampling.BOX).tobytes()
    value = 0
    for row in range(8):
        line = pixels[row * 9 : row * 9 + 9]
        for column in range(8):
            value = (value << 1) | (line[column] > line[column + 1])
    return value


def to_signed(value: int) -> int:
    """The BIGINT that stores an unsigned 64-bit hash."""
    return value - (1 << HASH_BITS) if value & _SIGN else value


def to_unsigned(value: int) -> int:
    return value & MASK


def distance(a: int, b: int) -> int:
    """Hamming distance of two hashes, whether stored signed or not."""
    return ((a ^ b) & MASK).bit_count()
