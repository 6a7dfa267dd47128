"""What politeness costs, and that a throttled host does not slow a fast one.

    NO_ALBUMENTATIONS_UPDATE=1 python benchmarks/polite.py [--images 1000] [--rounds 3]

1. Admission cost. The crawl of benchmarks/crawl.py (real handlers, one process, moto SQS, an S3 sink,
   embedded PostgreSQL) runs over the same loopback host twice per round: unthrottled (the host lifted by
   `CRAWL_HOST_OVERRIDES`, as every benchmark runs) and admitted by a budget too generous to ever make it wait
   (`--rate` requests per second, concurrency 16), so every image pays the shared budget's statements.
   Printed: the crawl's CPU per image both ways (medians), and the CPU of one `hosts.take` statement measured
   alone, times the statements an image needs.
2. Two hosts. One scheduler (the chunk's own admission, `crawl.lanes`) gets `--fast` URLs of an unthrottled
   host interleaved with `--slow` URLs of a host limited to 2 requests per second. Printed: when the fast
   host's last image arrived, alone and beside the throttled host, from the hosts' own request logs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "common"))
sys.path.insert(0, str(ROOT))

from benchmarks.crawl import _moto, _sink, configure, in_child, migrated_database, run_ours, serve  # noqa: E402
from pixcrawler_local.stack import LOOPBACK_UNLIMITED  # noqa: E402

SLOW, FAST = "127.0.0.2", "127.0.0.3"


def crawl_cpu_per_image(urls: list[str], moto: str, sink: str, overrides: str) -> tuple[float, float]:
    """CPU milliseconds per stored image and images per second of one crawl under these host overrides."""
    from pixcrawler.settings import get_settings

    os.environ["CRAWL_HOST_OVERRIDES"] = overrides
    get_settings.cache_clear()
    run = run_ours(urls, moto, sink)
    return 1000 * run.cpu / run.rows, run.rows / run.wall


def take_cost(batch: int, calls: int = 2000) -> tuple[float, float]:
    """CPU and wall milliseconds of one `hosts.take` granting `batch` tokens (a budget that never runs dry)."""
    import uuid

    from pixcrawler.crawl import hosts

    limits = hosts.Limits(rate=1e9, concurrency=16)
    lease, host = uuid.uuid4().hex, f"bench-{uuid.uuid4().hex[:8]}.example"
    until = time.time() + 600

    def take(succeeded: int) -> None:
        hosts.take(host, limits, want=batch, held=16, want_slots=0, lease=lease, until=until, succeeded=succeeded)

    take(0)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        take(batch)
    return 1000 * (time.process_time() - cpu) / calls, 1000 * (time.perf_counter() - wall) / calls


def two_hosts(fast_count: int, slow_count: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pixcrawler.crawl.download import Downloader
    from pixcrawler.crawl.lanes import Scheduler
    from pixcrawler.providers import Candidate
    from pixcrawler.settings import get_settings
    from pixcrawler_local import samples
    from pixcrawler_local.httphost import HttpHost, Response

    os.environ["CRAWL_HOST_OVERRIDES"] = json.dumps(
        {FAST: {"rate": None, "concurrency": None}, SLOW: {"rate": 2, "concurrency": 2}}
    )
    get_settings.cache_clear()
    settings = get_settings()
    pool = ThreadPoolExecutor(settings.download_concurrency)

    def host(address: str, count: int, start: int) -> tuple[HttpHost, list[str]]:
        server = HttpHost(address)
        for seed in range(start, start + count):
            body = samples.jpeg(seed, 640, 480)
            server.routes[f"/{seed}.jpg"] = Response(body, headers={"Content-Type": "image/jpeg"})
        return server, [server.url(f"/{seed}.jpg") for seed in range(start, start + count)]

    def fast_host_done(with_slow: bool, round_number: int) -> tuple[float, int]:
        fast, fast_urls = host(FAST, fast_count, 10_000 * round_number)
        slow, slow_urls = host(SLOW, slow_count if with_slow else 0, 10_000 * round_number + 5_000)
        arrived: list[float] = []
        fast.routes.update({path: _timed(route, arrived) for path, route in fast.routes.items()})
        urls = [*fast_urls, *slow_urls]
        if with_slow:  # every fast URL follows a slow one, as far as the slow ones go
            urls = [u for pair in zip(slow_urls, fast_urls, strict=False) for u in pair] + fast_urls[len(slow_urls) :]
        downloader = Downloader(settings)
        with fast, slow:
            started = time.monotonic()
            gathered = Scheduler(
                download=lambda candidate: downloader.fetch(candidate.url).sha256,
                downloader=downloader,
                pool=pool,
                settings=settings,
                stop_by=time.monotonic() + 600,
                respect_robots=True,
            ).run([Candidate(url) for url in urls])
        downloader.close()
        slow_served = sum(1 for path in slow.requests if path != "/robots.txt")
        assert len(arrived) == fast_count and len(gathered.deferred) + slow_served == len(slow_urls)
        return max(arrived) - started, slow_served

    alone = [fast_host_done(False, n)[0] for n in range(3)]
    mixed = [fast_host_done(True, n + 3) for n in range(3)]
    print(f"two hosts: {fast_count} images of an unthrottled host with {slow_count} of a host at 2 requests/s")
    print(f"  fast host alone          : its last image after {1000 * statistics.median(alone):6.0f} ms")
    print(
        f"  beside the throttled host: its last image after {1000 * statistics.median(t for t, _ in mixed):6.0f} ms"
        f" (the throttled host served {mixed[1][1]} in that run; the rest waited or were deferred)"
    )


def _timed(route: Any, arrived: list[float]) -> Any:
    def answer(path: str) -> Any:
        arrived.append(time.monotonic())
        return route

    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100_000, help="the budgeted run's requests per second")
    parser.add_argument("--fast", type=int, default=200)
    parser.add_argument("--slow", type=int, default=20)
    args = parser.parse_args()
    configure(concurrency=16, urls_per_chunk=100)
    workdir = tempfile.mkdtemp(prefix="pixcrawler-polite-")
    server = None
    try:
        server = migrated_database(workdir)
        _, urls, stop = serve(args.images)
        moto, moto_stop, _ = in_child(_moto)
        sink, sink_stop, _ = in_child(_sink)
        budgeted = json.dumps({"127.0.0.1": {"rate": args.rate, "concurrency": 16}})
        free, paid = [], []
        for _ in range(args.rounds):
            free.append(crawl_cpu_per_image(urls, moto, sink, LOOPBACK_UNLIMITED))
            paid.append(crawl_cpu_per_image(urls, moto, sink, budgeted))
        stop.set()
        moto_stop.set()
        sink_stop.set()
        unthrottled, admitted = (statistics.median(cpu for cpu, _ in runs) for runs in (free, paid))
        print(f"{args.images} images, median of {args.rounds} alternating rounds, CPU of the crawl's process:")
        print(f"  unthrottled host        : {unthrottled:.3f} ms CPU per image, "
              f"{statistics.median(rate for _, rate in free):.0f} images/s")  # fmt: skip
        print(f"  budgeted ({args.rate:g}/s, 16 at once): {admitted:.3f} ms CPU per image, "
              f"{statistics.median(rate for _, rate in paid):.0f} images/s "
              f"({100 * (admitted - unthrottled) / unthrottled:+.1f} %)")  # fmt: skip
        for batch in (1, 5, 16):
            cpu, wall = take_cost(batch)
            print(
                f"  one hosts.take of {batch:2} token(s): {cpu:.3f} ms CPU, {wall:.3f} ms wall: "
                f"{cpu / batch:.3f} ms CPU per image, {100 * cpu / batch / unthrottled:.1f} % of the crawl's"
            )
        two_hosts(args.fast, args.slow)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
