"""Generated sample images: distinct, deterministic pictures that need no internet."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def picture(seed: int, width: int = 256, height: int = 256) -> Image.Image:
    """A picture unique to `seed`: a gradient background with a few shapes, so perceptual hashes differ."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    top, bottom = [rng.randrange(256) for _ in range(3)], [rng.randrange(256) for _ in range(3)]
    draw = ImageDraw.Draw(image)
    for y in range(height):
        mix = y / max(height - 1, 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True)))
    for _ in range(6):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(width // 8, width // 2 + 1), y0 + rng.randrange(height // 8, height // 2 + 1)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    return image


def encode(image: Image.Image, image_format: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def jpeg(seed: int, width: int = 256, height: int = 256, quality: int = 85) -> bytes:
    return encode(picture(seed, width, height), "JPEG", quality=quality)


def png(seed: int, width: int = 256, height: int = 256) -> bytes:
    return encode(picture(seed, width, height), "PNG")
