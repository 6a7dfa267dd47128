"""`pixcrawler demo`: the whole product offline, on generated images served from a loopback host.

The image set is chosen so every stage has something to do: distinct pictures that survive, plus a page
that is not an image and a missing file (refused by the crawler), and a near-duplicate, a thumbnail below
the size rule and a truncated JPEG (rejected by validation).
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pixcrawler.crawl.refusals import describe
from pixcrawler_local import samples
from pixcrawler_local.httphost import HttpHost, Response
from pixcrawler_local.pipeline import DatasetRequest, Outcome

DISTINCT_IMAGES = 20
RULES = {"min_width": 64, "min_height": 64}


@dataclass(frozen=True)
class SampleSet:
    urls: list[str]
    distinct: int


def host_samples(host: HttpHost, distinct: int = DISTINCT_IMAGES) -> SampleSet:
    """Put the demo's pictures (and its traps) on `host`; the URLs to crawl."""
    jpeg = {"Content-Type": "image/jpeg"}
    paths = []
    for seed in range(1, distinct + 1):
        paths.append(f"/images/{seed:03d}.jpg")
        host.routes[paths[-1]] = Response(samples.jpeg(seed, 320, 240), headers=jpeg)
    whole = samples.jpeg(10_000, 320, 240)
    near_copy = samples.encode(samples.picture(1, 320, 240).resize((288, 216)), "JPEG", quality=60)
    traps = {
        "/images/near-copy-of-001.jpg": Response(near_copy, headers=jpeg),
        "/images/thumbnail.jpg": Response(samples.jpeg(20_000, 40, 30), headers=jpeg),
        "/images/truncated.jpg": Response(whole[: len(whole) // 2], headers=jpeg),
        "/images/not-an-image.jpg": Response(b"<!doctype html><title>hi</title>", headers=jpeg),
    }
    host.routes.update(traps)
    paths += [*traps, "/images/missing.jpg"]
    return SampleSet([host.url(path) for path in paths], distinct)


def request(sample_set: SampleSet, output: Path) -> DatasetRequest:
    """The demo's dataset; the pipeline empties the URL list it is handed, so it gets a copy and the sample set
    keeps its URLs for whatever else crawls them (`benchmarks/queries.py` crawls them twice)."""
    return DatasetRequest(
        name="PixCrawler demo",
        keywords=["demo"],
        providers=["urls"],
        max_images=len(sample_set.urls),
        urls=list(sample_set.urls),
        rules=RULES,
        output=output,
    )


def start_host(stack: ExitStack) -> SampleSet:
    return host_samples(stack.enter_context(HttpHost()))


def summary(outcome: Outcome, urls: int) -> str:
    crawl, validation, export = outcome.crawl, outcome.validation, outcome.export
    crawled = crawl["downloaded_images"]
    valid = validation["total_images"] - validation["invalid_images"]
    size_mb = outcome.archive_size / 1_000_000
    refused = describe(crawl.get("refused") or {})
    return "\n".join(
        [
            f"PixCrawler demo finished in {outcome.elapsed:.1f} s",
            f"  crawled   {crawled} images from {urls} URLs (refused by the crawler: {refused or 'none'})",
            f"  valid     {valid} ({validation['invalid_images']} rejected by validation)",
            f"  exported  {export['exported_images']} images, {size_mb:.2f} MB",
            f"  archive   {outcome.archive}",
        ]
    )
