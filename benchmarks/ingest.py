"""CPU the crawl worker adds per image by taking its facts at ingest: one reduced decode (with the hash and the
blank figure) plus the 256 px WebP thumbnail, measured apart.

    python benchmarks/ingest.py [--images 300]

CPU seconds of this one process (`time.process_time`), i.e. per core. Photo-sized 1024x768 JPEGs with grain
(flat generated shapes decode unrealistically fast); the crawl's own work, for scale, is 1.3-1.4 ms of CPU per
image (README, Crawl pipeline).
"""

from __future__ import annotations

import argparse
import io
import time

from PIL import Image

from pixcrawler.validation import ingest, rules
from pixcrawler_local import samples

MAX_PIXELS = 50_000_000


def photo(seed: int, width: int = 1024, height: int = 768) -> bytes:
    picture = samples.picture(seed, width, height)
    grain = Image.effect_noise((width, height), 24).convert("RGB")
    return samples.encode(Image.blend(picture, grain, 0.15), "JPEG", quality=80)


def cpu_ms(corpus: list[bytes], work: object) -> float:
    started = time.process_time()
    for data in corpus:
        work(data)  # type: ignore[operator]
    return (time.process_time() - started) * 1000 / len(corpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=300)
    count = parser.parse_args().images
    corpus = [photo(seed) for seed in range(count)]
    print(f"{count} JPEGs 1024x768, {sum(map(len, corpus)) // count // 1024} KiB on average; CPU per image:")
    facts = cpu_ms(corpus, lambda data: rules.examine(io.BytesIO(data), MAX_PIXELS))
    whole = cpu_ms(corpus, lambda data: ingest.take(data, MAX_PIXELS))
    thumbnails = [ingest.take(data, MAX_PIXELS).thumbnail or b"" for data in corpus]
    print(f"  reduced decode + dHash + blank figure      {facts:5.2f} ms")
    print(f"  + 256 px thumbnail, WebP encode            {whole - facts:5.2f} ms")
    print(f"  ingest in all (validation.ingest.take)     {whole:5.2f} ms  ({1000 / whole:,.0f} images/s per core)")
    print(f"  thumbnail size                             {sum(map(len, thumbnails)) // count:5d} bytes on average")


if __name__ == "__main__":
    main()
