"""CPU the crawl worker adds per image by taking its facts at ingest: one reduced decode (with the hash and the
blank figure) plus the 256 px thumbnail's encoding, measured apart, as JPEG (what the crawl stores for pictures
without transparency) against WebP at libwebp's fastest setting (what it stored before, and still stores for
pictures with transparency).

    python benchmarks/ingest.py [--images 300]

CPU seconds of this one process (`time.process_time`), i.e. per core. Photo-sized 1024x768 JPEGs with grain
(flat generated shapes decode unrealistically fast), then the 256x256 JPEGs `benchmarks/crawl.py` serves, each
its own thumbnail; the crawl's own work, for scale, is 1.5-1.6 ms of CPU per image there (README, Crawl
pipeline).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from PIL import Image

from pixcrawler.validation import ingest, rules
from pixcrawler_local import samples

MAX_PIXELS = 50_000_000
T = TypeVar("T")


def photo(seed: int, width: int = 1024, height: int = 768) -> bytes:
    picture = samples.picture(seed, width, height)
    grain = Image.effect_noise((width, height), 24).convert("RGB")
    return samples.encode(Image.blend(picture, grain, 0.15), "JPEG", quality=80)


def cpu_ms(items: Sequence[T], work: Callable[[T], object]) -> float:
    started = time.process_time()
    for item in items:
        work(item)
    return (time.process_time() - started) * 1000 / len(items)


def encoded(preview: Image.Image, name: str, options: dict[str, int]) -> bytes:
    buffer = io.BytesIO()
    preview.save(buffer, name, **options)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=300)
    count = parser.parse_args().images
    corpus = [photo(seed) for seed in range(count)]
    print(f"{count} JPEGs 1024x768, {sum(map(len, corpus)) // count // 1024} KiB on average; CPU per image:")
    facts = cpu_ms(corpus, lambda data: rules.examine(io.BytesIO(data), MAX_PIXELS))
    whole = cpu_ms(corpus, lambda data: ingest.take(data, MAX_PIXELS))
    previews = [rules.examine(io.BytesIO(data), MAX_PIXELS, lambda _: True).thumbnail for data in corpus]
    pictures = [preview for preview in previews if preview is not None]
    encodings = {
        "JPEG": {"quality": ingest.THUMBNAIL_JPEG_QUALITY},
        "WEBP": {"quality": ingest.THUMBNAIL_WEBP_QUALITY, "method": ingest.THUMBNAIL_WEBP_EFFORT},
    }
    print(f"  reduced decode + dHash + blank figure      {facts:5.2f} ms")
    for name, options in encodings.items():
        spent = cpu_ms(pictures, lambda preview: encoded(preview, name, options))  # noqa: B023  (used at once)
        size = sum(len(encoded(preview, name, options)) for preview in pictures) // len(pictures)
        print(f"  256 px thumbnail, {name} encode alone       {spent:5.2f} ms, {size:,} bytes on average")
    print(f"  ingest in all (validation.ingest.take)     {whole:5.2f} ms  ({1000 / whole:,.0f} images/s per core)")
    small = [samples.jpeg(seed) for seed in range(count)]  # benchmarks/crawl.py's images, their own thumbnails
    own = cpu_ms(small, lambda data: ingest.take(data, MAX_PIXELS))
    size = sum(map(len, small)) // count // 1024
    print(f"  ingest in all at 256x256, {size} KiB (no thumbnail to make)  {own:5.2f} ms")


if __name__ == "__main__":
    main()
