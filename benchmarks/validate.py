"""Validation throughput and the near-duplicate pass, each against a baseline measured in the same run.

    python benchmarks/validate.py [--images 200] [--hashes 100000] [--subset 4000]

Figures are CPU seconds of this one process (`time.process_time`), i.e. per core, so other load on the
machine does not skew them; wall-clock seconds are printed alongside.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PIL import Image

from pixcrawler.schemas.validation import ValidationRules
from pixcrawler.validation import rules
from pixcrawler.validation.hashing import dhash
from pixcrawler.validation.neardup import Candidate, MultiIndex, find_duplicates, pairwise_duplicates
from pixcrawler_local import samples

MAX_PIXELS = 50_000_000


@contextmanager
def timed(into: list[float]) -> Iterator[None]:
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    into.extend([time.process_time() - cpu, time.perf_counter() - wall])


def full_decode_baseline(data: bytes) -> int:
    """The naive alternative: decode at full resolution, then hash."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return dhash(image.convert("L"))


def photo_like(seed: int, size: int) -> bytes:
    """A sample picture with grain: flat generated shapes compress and decode unrealistically fast."""
    picture = samples.picture(seed, size, size)
    grain = Image.effect_noise((size, size), 48).convert("RGB")
    return samples.encode(Image.blend(picture, grain, 0.25), "JPEG", quality=85)


def throughput(count: int) -> None:
    print("per-image validation of photo-like JPEGs (default rules plus reject_blank)")
    job_rules = ValidationRules(reject_blank=True)
    for size in (256, 1024):
        corpus = [photo_like(seed, size) for seed in range(count)]
        average = sum(map(len, corpus)) // count // 1024
        contenders: dict[str, Callable[[bytes], object]] = {
            "validator (draft decode)": lambda data: rules.inspect(io.BytesIO(data), len(data), job_rules, MAX_PIXELS),
            "baseline (full decode)": full_decode_baseline,
        }
        rates = {}
        for name, check in contenders.items():
            spent: list[float] = []
            with timed(spent):
                for data in corpus:
                    check(data)
            rates[name] = count / spent[0]
            label = f"{size}px ({average} KiB)"
            print(f"  {label:<16} {name:<26} {rates[name]:6.0f} images/s per core  (wall {spent[1]:.2f}s)")
        speedup = rates["validator (draft decode)"] / rates["baseline (full decode)"]
        print(f"  {size}px: validator is {speedup:.1f}x the full-decode baseline")


def planted_hashes(count: int, rng: random.Random) -> list[int]:
    """Random 64-bit hashes, 1% of which get a near copy 0-4 bits away (what resized copies look like)."""
    hashes = [rng.getrandbits(64) for _ in range(count - count // 100)]
    for base in rng.sample(hashes, count // 100):
        hashes.append(base ^ sum(1 << bit for bit in rng.sample(range(64), rng.randint(0, 4))))
    return hashes


def near_duplicates(count: int, subset: int, extra_thresholds: list[int]) -> None:
    rng = random.Random(2026)
    hashes = planted_hashes(count, rng)
    job_rules = ValidationRules()
    threshold = job_rules.near_duplicate_threshold
    candidates = [Candidate(i, f"{i:064x}", value, 256, 256) for i, value in enumerate(hashes)]
    print(f"\nnear-duplicate pass, {count:,} hashes ({count // 100:,} planted copies), threshold {threshold}")
    spent: list[float] = []
    with timed(spent):
        duplicates = find_duplicates(candidates, job_rules)
    removed = len(duplicates)
    print(f"  multi-index hashing, whole pass     {spent[0]:8.2f} s  (wall {spent[1]:.2f}s), {removed:,} removed")

    sample = hashes[:subset]
    pairwise: list[float] = []
    with timed(pairwise):
        expected = pairwise_duplicates(sample, threshold)
    index = MultiIndex(sample, threshold)
    found = {(min(i, j), max(i, j)) for i, value in enumerate(sample) for j in index.within(value) if i != j}
    assert found == expected, "the index must find exactly the pairs a full comparison finds"
    pairs = subset * (subset - 1) // 2
    extrapolated = pairwise[0] * (count * (count - 1) / 2) / pairs
    print(f"  pairwise on a {subset:,}-hash subset  {pairwise[0]:8.2f} s  for {pairs:,} pairs (same pairs found)")
    print(f"  pairwise extrapolated to {count:,}  {extrapolated:8.0f} s  (quadratic: x{count**2 / subset**2:,.0f})")
    print(f"  multi-index is ~{extrapolated / spent[0]:,.0f}x faster than pairwise at {count:,} hashes")
    for looser in extra_thresholds:
        spent = []
        with timed(spent):
            removed = len(find_duplicates(candidates, ValidationRules(near_duplicate_threshold=looser)))
        label = f"multi-index at threshold {looser}"
        print(f"  {label:<35} {spent[0]:8.2f} s  (wall {spent[1]:.2f}s), {removed:,} removed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=4_000)
    parser.add_argument("--thresholds", default="8", help="further thresholds to time the pass at, comma-separated")
    arguments = parser.parse_args()
    throughput(arguments.images)
    extra = [int(value) for value in arguments.thresholds.split(",") if value]
    near_duplicates(arguments.hashes, arguments.subset, extra)


if __name__ == "__main__":
    main()
