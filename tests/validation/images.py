"""Generated test images with the defects the validator must catch."""

from __future__ import annotations

import random
import struct
import zlib

from PIL import Image

from pixcrawler_local import samples


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` by `height`: a decompression bomb if ever decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]


def corrupted(data: bytes) -> bytes:
    """Scan data overwritten in the middle: the header still parses, the pixels do not."""
    middle = len(data) // 2
    return data[:middle] + b"\xff" * 200 + data[middle + 200 :]


def blank(width: int = 256, height: int = 256, noise: int = 2, seed: int = 0) -> bytes:
    """A flat grey picture with a little noise, as a broken thumbnail server would send."""
    rng = random.Random(seed)
    image = Image.new("L", (width, height), 128)
    image.putdata([128 + rng.randint(-noise, noise) for _ in range(width * height)])
    return samples.encode(image.convert("RGB"), "PNG")


def resized_copy(seed: int, width: int, height: int, quality: int = 60) -> bytes:
    """The picture of `seed` drawn at 256 px, resized and re-encoded: a near-duplicate of `samples.jpeg(seed)`."""
    return samples.encode(samples.picture(seed).resize((width, height)), "JPEG", quality=quality)
