"""A user's first comparison: `pixcrawler crawl` against img2dataset on the same photos, same machine, same run.

    python benchmarks/pipeline.py [--images 2000] [--rounds 2] [--threads 16] [--skip-peer] [--compare-at 20000]

Generates N photo-sized JPEGs (1024x768, about 115 KB, deterministic; cached under
~/.cache/pixcrawler-bench/photos-1024x768), serves them from loopback in a separate process, then times, in
alternating rounds, each tool as a user runs it, in its own process tree:

- img2dataset (1 process, `--threads` threads, `output_format=files`, no resize), from its own virtualenv
  (~/.cache/pixcrawler-bench/img2dataset-venv, created with `pip install img2dataset` on first use: installed
  next to aws-sam-cli it upgrades the `click` that sam pins);
- `pixcrawler crawl photos --provider urls --urls-file ... --format tar --allow-loopback` on a fresh data dir
  each round: start-up (the embedded PostgreSQL copied from its template), crawl, validate, export, download, shutdown.

Each round runs each tool twice: timed with nothing watching it, then again with its memory sampled (`measured`).
For each: wall time, images delivered per second, and peak memory of ALL its processes (the sum of their RSS,
and the sum of their PSS, which divides shared pages among the processes mapping them instead of counting
PostgreSQL's shared buffers once per backend; sampled every 50 ms over the process tree plus the embedded
PostgreSQL, which `pg_ctl` leaves reparented),
and for ours the time per stage as `pixcrawler crawl` prints it. With `--compare-at M`, ours also runs as many
rounds on M photos, and the peaks at the two sizes are compared: the same when the PSS sum that 99 % of the
samples stay under is within 2 % at both (`compare` says why not the highest sample).
Then whether the goals of issue #15 are met.
The machine's load average is printed: figures on a shared machine swing with other tenants' work.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import psutil  # already installed: pgserver, a dependency of the local stack, requires it
from PIL import Image

from pixcrawler_local.stack import LOOPBACK_UNLIMITED

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pixcrawler-bench"
PHOTOS = CACHE / "photos-1024x768"
PEER_VENV = CACHE / "img2dataset-venv"
PIXCRAWLER = Path(sys.executable).parent / "pixcrawler"
MiB = 1 << 20
MEMORY_GOAL = 400 * MiB
SAME_WITHIN = 0.02
"""How far the larger size's memory may lie above the smaller's and still be the same: 5 MiB of 255, which
growth of 300 bytes per image (a URL and a few fields kept for every image) would pass at 20,000 photos."""
SAMPLE_EVERY = 0.05

PEER_SCRIPT = """
import sys, time
from img2dataset import download

urls, output, threads, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
resize_mode = sys.argv[5] if len(sys.argv) > 5 else "no"
started = time.perf_counter()
download(
    url_list=urls, input_format="txt", output_folder=output, output_format="files", resize_mode=resize_mode,
    image_size=256, processes_count=1, thread_count=threads, timeout=10, retries=0, number_sample_per_shard=count,
    disallowed_header_directives=[],
)
print(time.perf_counter() - started)
"""
"""img2dataset from its venv: `python -c PEER_SCRIPT URL_FILE OUTPUT THREADS COUNT [RESIZE_MODE]` (`no` unless
given; a resize is to 256 px, img2dataset's default size); prints the seconds spent in `download()` (its
start-up and sharding included, its interpreter start and imports not)."""


def photo(seed: int, width: int = 1024, height: int = 768) -> bytes:
    """A JPEG that compresses like a photo (~115 KB at quality 85): smooth colour fields, mid-frequency texture
    and a little grain, all from `seed`, so every image and its perceptual hash differ."""
    rng = random.Random(seed)

    def noise(mode: str, size: tuple[int, int]) -> Image.Image:
        bands = len(mode)
        return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * bands))

    fields = noise("RGB", (8, 6)).resize((width, height), Image.Resampling.BICUBIC)
    texture = noise("RGB", (width // 8, height // 8)).resize((width, height), Image.Resampling.BICUBIC)
    grain = noise("L", (width, height)).convert("RGB")
    image = Image.blend(Image.blend(fields, texture, 0.3), grain, 0.015)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _write_photo(seed: int) -> None:
    path = PHOTOS / f"{seed}.jpg"
    partial = path.with_suffix(".part")
    partial.write_bytes(photo(seed))
    partial.replace(path)


def ensure_photos(count: int) -> None:
    PHOTOS.mkdir(parents=True, exist_ok=True)
    missing = [seed for seed in range(count) if not (PHOTOS / f"{seed}.jpg").exists()]
    if missing:
        print(f"generating {len(missing)} photos into {PHOTOS} ...", flush=True)
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(_write_photo, missing, chunksize=50))


class _PhotoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default backlog of 5 stalls 16 concurrent downloaders


def _serve(ready: Any, stop: Any) -> None:
    """GET /img/N.jpg from the photo cache, read per request (from the page cache), keep-alive."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            match = re.fullmatch(r"/img/(\d+)\.jpg", self.path)
            path = PHOTOS / f"{match[1]}.jpg" if match else None
            if path is None or not path.exists():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = _PhotoServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.send(f"http://127.0.0.1:{server.server_port}")
    stop.wait()


class Peak(NamedTuple):
    total: int
    """The largest sum of RSS over all the tool's processes seen in one sample."""
    proportional: int
    """The largest sum of PSS in one sample: each shared page (PostgreSQL's shared buffers, the libraries) is
    divided among the processes that map it, instead of counted in full by each, as the RSS sum does."""
    largest: int
    """The largest RSS of any one of its processes."""
    processes: int
    """The most processes seen at once (the embedded PostgreSQL's included)."""
    parts: dict[str, int]
    """The largest PSS sum of each part (`_part`), each at its own peak: where the memory is."""
    high: int
    """The PSS sum that 99 % of the samples stay at or below. Unlike the peak it does not grow with the run's
    length: a run ten times as long samples the export's swings ten times as often, and its highest sample
    is higher though its memory is not."""


class MemorySampler:
    """Samples the RSS of a process tree every 50 ms, plus every process (and its children) whose command line
    names `also` (the embedded PostgreSQL, whose postmaster `pg_ctl` leaves parented to init)."""

    def __init__(self, root: int, also: str | None = None) -> None:
        self.root, self.also = root, also
        self.total = self.proportional = self.largest = self.processes = 0
        self.parts: dict[str, int] = {}
        self.sums: list[int] = []
        self._extra: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> Peak:
        high = sorted(self.sums)[len(self.sums) * 99 // 100] if self.sums else 0
        return Peak(self.total, self.proportional, self.largest, self.processes, dict(self.parts), high)

    def _find_extra(self) -> None:
        if self.also is None:
            return
        for process in psutil.process_iter(["cmdline"]):
            if any(self.also in part for part in process.info["cmdline"] or ()):
                self._extra.add(process.pid)

    def _tree(self) -> list[psutil.Process]:
        processes: dict[int, psutil.Process] = {}
        for pid in (self.root, *self._extra):
            try:
                top = psutil.Process(pid)
                processes.update((p.pid, p) for p in (top, *top.children(recursive=True)))
            except psutil.NoSuchProcess:
                self._extra.discard(pid)
        return list(processes.values())

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            if ticks % 10 == 0:  # a new postmaster appears once, early; a full scan costs more than a sample
                self._find_extra()
            rss, pss = [], []
            parts: collections.Counter[str] = collections.Counter()
            for process in self._tree():
                with contextlib.suppress(psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
                    rss.append(process.memory_info().rss)
                    pss.append(_pss(process.pid))
                    parts[self._part(process)] += pss[-1]
            self.total, self.largest = max(self.total, sum(rss)), max(self.largest, max(rss, default=0))
            self.proportional = max(self.proportional, sum(pss))
            self.sums.append(sum(pss))
            for part, size in parts.items():
                self.parts[part] = max(self.parts.get(part, 0), size)
            self.processes = max(self.processes, len(rss))
            ticks += 1
            self._stop.wait(SAMPLE_EVERY)

    def _part(self, process: psutil.Process) -> str:
        if process.pid == self.root:
            return "main process"
        command = " ".join(process.cmdline())
        return next((part for marker, part in PARTS if marker in command), "other")


PARTS = (("postgres", "PostgreSQL"), ("pixcrawler_local.emulator", "S3/SQS emulator"))


def _pss(pid: int) -> int:
    """The process's proportional set size, from /proc/PID/smaps_rollup (kB)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


class Run(NamedTuple):
    wall: float
    images: int
    peak: Peak
    stages: dict[str, float]


NOT_SAMPLED = Peak(0, 0, 0, 0, {}, 0)


def timed(
    command: list[str], env: dict[str, str], workdir: Path, also: str | None = None, sample: bool = True
) -> tuple[float, Peak, str]:
    """Run `command` to its end, sampling its memory unless told not to; its wall time, peak and stdout. A
    failure stops the run."""
    out, err = workdir / "stdout", workdir / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=workdir, stdout=stdout, stderr=stderr)
        with MemorySampler(process.pid, also) if sample else contextlib.nullcontext() as sampler:
            code = process.wait()
        wall = time.perf_counter() - started
    if code != 0:
        sys.exit(f"{command[0]} exited {code}:\n{err.read_text()[-3000:]}")
    return wall, NOT_SAMPLED if sampler is None else sampler.peak, out.read_text()


def fresh_env(**extra: str) -> dict[str, str]:
    """What a fresh shell has (no DATABASE_URL, no AWS or stack settings), so each tool runs as a user runs it."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {**{name: os.environ[name] for name in keep if name in os.environ}, **extra}


def ensure_peer() -> Path | None:
    """img2dataset's python, from its own venv (created on first use); None, having said why, if it cannot be."""
    python = PEER_VENV / "bin" / "python"
    check = [str(python), "-c", "import img2dataset"]
    env = fresh_env(NO_ALBUMENTATIONS_UPDATE="1")
    if python.exists() and subprocess.run(check, env=env, capture_output=True).returncode == 0:
        return python
    print(f"installing img2dataset into {PEER_VENV} (first use) ...", flush=True)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(PEER_VENV)],
        [str(python), "-m", "pip", "install", "-q", "img2dataset"],
    )
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            print(f"COULD NOT INSTALL img2dataset ({' '.join(step)} exited {result.returncode}):\n{tail}")
            print("img2dataset is skipped: only pixcrawler is timed, and the goal against it cannot be judged.")
            return None
    return python


def run_peer(python: Path, urls: Path, count: int, threads: int, workdir: Path, sample: bool = True) -> Run:
    output = workdir / "files"
    command = [str(python), "-c", PEER_SCRIPT, str(urls), str(output), str(threads), str(count)]
    wall, peak, _ = timed(command, fresh_env(NO_ALBUMENTATIONS_UPDATE="1"), workdir, sample=sample)
    images = len(list(output.rglob("*.jpg")))
    if images != count:
        sys.exit(f"img2dataset delivered {images} of {count} images; see {workdir}/stderr")
    return Run(wall, images, peak, {})


SUMMARY = re.compile(r"(\d+) crawled, (\d+) valid, (\d+) exported in ([\d.]+) s")


def run_ours(urls: Path, count: int, workdir: Path, sample: bool = True) -> Run:
    data_dir, archive = workdir / "data", workdir / "photos.tar"
    command = [
        str(PIXCRAWLER), "crawl", "photos", "--provider", "urls", "--urls-file", str(urls),
        "--max-images", str(count), "--format", "tar", "--allow-loopback", "--output", str(archive),
        "--data-dir", str(data_dir), "--quiet",
    ]  # fmt: skip
    # the stack lifts loopback's host budget itself; said here too, as the crawl benchmark says it
    env = fresh_env(CRAWL_HOST_OVERRIDES=LOOPBACK_UNLIMITED)
    wall, peak, stdout = timed(command, env, workdir, also=str(data_dir), sample=sample)
    summary = SUMMARY.search(stdout)
    stages = dict(re.findall(r"(\w+) ([\d.]+) s", stdout.partition("stages: ")[2].splitlines()[0]))
    if summary is None or not stages:
        sys.exit(f"pixcrawler crawl printed no summary or stage times:\n{stdout}")
    with tarfile.open(archive) as tar:
        images = sum(member.name.endswith(".jpg") for member in tar.getmembers())
    if images != int(summary[3]):
        sys.exit(f"the archive holds {images} images, the summary says {summary[3]} exported")
    timings = {stage: float(seconds) for stage, seconds in stages.items()}
    timings["start-up + shutdown"] = wall - sum(timings.values())
    return Run(wall, images, peak, timings)


def measured(run: Callable[..., Run], workdir: Path, label: str) -> Run:
    """One tool's round: timed with nothing watching it, then run again with its memory sampled. The sampler
    takes about a third of a core, and each of its reads of a process's smaps walks that process's page tables
    under its memory map's lock. In nine rounds here (2026-12-07) it slowed our eleven processes by 0.2-1.6 s
    of 15-18 s (median 1.2 s) and img2dataset's four by -0.6 to +2.8 s (median 0.0 s). The round's wall and
    stages are the first run's, its peaks the second's."""
    (alone := workdir / "timed").mkdir(parents=True)
    timed_run = run(alone, sample=False)
    shutil.rmtree(alone)
    (watched := workdir / "sampled").mkdir()
    sampled = run(watched)
    shutil.rmtree(watched)
    print(f"{label} {timed_run.wall:.1f} s ({sampled.wall:.1f} s while sampled); {load()}", flush=True)
    return timed_run._replace(peak=sampled.peak)


def url_list(path: Path, base_url: str, count: int) -> Path:
    path.write_text("".join(f"{base_url}/img/{seed}.jpg\n" for seed in range(count)))
    return path


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def report(ours: list[Run], theirs: list[Run], count: int) -> None:
    median = statistics.median

    def row(label: str, runs: list[Run]) -> str:
        wall = median(run.wall for run in runs)
        images = min(run.images for run in runs)
        total, largest = max(run.peak.total for run in runs), max(run.peak.largest for run in runs)
        proportional = max(run.peak.proportional for run in runs)
        processes = max(run.peak.processes for run in runs)
        return (
            f"| {label} | {wall:.1f} s | {images / wall:.0f} | {total / MiB:,.0f} MiB in {processes} processes "
            f"| {proportional / MiB:,.0f} MiB | {largest / MiB:,.0f} MiB |"
        )

    print(
        f"\n{count:,} photos, median wall of {len(ours)} round(s) each, timed with nothing sampling; peak memory is "
        "the highest of the same rounds run again, sampled"
    )
    print("| tool | wall | images/s | peak RSS sum, all processes | peak PSS sum | largest process |")
    print("| --- | --- | --- | --- | --- | --- |")
    if theirs:
        print(row("img2dataset, 1 process, 16 threads, files, no resize", theirs))
    print(row("`pixcrawler crawl --provider urls --format tar` (fresh data dir)", ours))
    parts = {part: max(run.peak.parts.get(part, 0) for run in ours) for part in ours[0].peak.parts}
    print(
        "our peak PSS by part, each at its own peak: " + ", ".join(f"{p} {b / MiB:,.0f} MiB" for p, b in parts.items())
    )
    print("\n| pixcrawler stage | time | images/s |")
    print("| --- | --- | --- |")
    for stage in ours[0].stages:
        seconds = median(run.stages[stage] for run in ours)
        rate = f"{ours[0].images / seconds:.0f}" if seconds > 0 and stage != "start-up + shutdown" else ""
        print(f"| {stage} | {seconds:.1f} s | {rate} |")
    our_wall, our_peak = median(run.wall for run in ours), max(run.peak.total for run in ours)
    our_pss = max(run.peak.proportional for run in ours)
    print("\ngoals (issue #15):")
    if theirs:
        ratio = our_wall / median(run.wall for run in theirs)
        print(f"- our wall <= 1.0x img2dataset's: {ratio:.2f}x, {verdict(ratio <= 1.0)}")
    else:
        print("- our wall <= 1.0x img2dataset's: not judged (img2dataset did not run)")
    memory = f"{our_peak / MiB:,.0f} MiB RSS sum, {verdict(our_peak <= MEMORY_GOAL)}"
    memory += f"; {our_pss / MiB:,.0f} MiB PSS sum, {verdict(our_pss <= MEMORY_GOAL)}"
    print(f"- our peak memory <= 400 MiB, whole local stack: {memory}")


def compare(small: list[Run], large: list[Run], sizes: tuple[int, int]) -> None:
    """The peaks at two sizes, by part and in sum, and the same when the PSS sum that 99 % of the larger
    size's samples stay under (`Peak.high`) is within `SAME_WITHIN` of the smaller size's, highest rounds
    against each other. Not the peaks themselves: the highest sample of a run ten times as long is higher
    even where memory is flat (2026-12-07, one run at each size sampled moment by moment: 259.8 and 260.7
    MiB at their highest, both in the export), and the rounds' ranges overlapped in some runs and missed by
    3-6 MiB in others."""

    def spread(values: list[int]) -> str:
        low, high = min(values) / MiB, max(values) / MiB
        return f"{low:,.0f}" if round(low) == round(high) else f"{low:,.0f}-{high:,.0f}"

    print(f"\nour peaks, {sizes[0]:,} → {sizes[1]:,} photos ({len(small)} and {len(large)} round(s)):")
    for part in small[0].peak.parts:
        before = [run.peak.parts.get(part, 0) for run in small]
        after = [run.peak.parts.get(part, 0) for run in large]
        print(f"- {part}: {spread(before)} → {spread(after)} MiB PSS")
    for label, measure in (("RSS sum", lambda run: run.peak.total), ("PSS sum", lambda run: run.peak.proportional)):
        before, after = [measure(run) for run in small], [measure(run) for run in large]
        step = (max(after) - max(before)) / MiB
        print(f"- {label}: {spread(before)} → {spread(after)} MiB ({step:+.0f} MiB by the highest rounds)")
    before, after = [run.peak.high for run in small], [run.peak.high for run in large]
    step = max(after) / max(before) - 1
    print(
        f"- PSS sum under which 99 % of the samples stay: {spread(before)} → {spread(after)} MiB ({step:+.1%} by "
        "the highest rounds)"
    )
    same = f"{verdict(step <= SAME_WITHIN)} (within {SAME_WITHIN:.0%} by that 99th percentile)"
    print(f"- the same at {sizes[1]:,} images as at {sizes[0]:,} (PSS sum): {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="photos to crawl (the memory check wants 20000)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each tool; medians shown")
    parser.add_argument("--threads", type=int, default=16, help="img2dataset's download threads")
    parser.add_argument("--skip-peer", action="store_true", help="time pixcrawler only")
    parser.add_argument("--compare-at", type=int, help="also run pixcrawler on this many photos and compare the peaks")
    args = parser.parse_args()
    if not PIXCRAWLER.exists():
        sys.exit(f"no `pixcrawler` command next to {sys.executable}: run `pip install -e .` in this checkout")
    peer = None if args.skip_peer else ensure_peer()
    ensure_photos(max(args.images, args.compare_at or 0))
    receiver, sender = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    host = multiprocessing.Process(target=_serve, args=(sender, stop), daemon=True)
    host.start()
    base_url = receiver.recv()
    workdir = Path(tempfile.mkdtemp(prefix="pixcrawler-pipeline-bench-"))
    try:
        urls = url_list(workdir / "urls.txt", base_url, args.images)
        print(f"{args.images:,} photos served from {base_url} by process {host.pid}; {load()}", flush=True)
        ours: list[Run] = []
        theirs: list[Run] = []
        for round_number in range(args.rounds):
            if peer is not None:
                theirs.append(
                    measured(
                        partial(run_peer, peer, urls, args.images, args.threads),
                        workdir / f"img2dataset-{round_number}",
                        f"round {round_number + 1}: img2dataset",
                    )
                )
            ours.append(
                measured(
                    partial(run_ours, urls, args.images),
                    workdir / f"pixcrawler-{round_number}",
                    f"round {round_number + 1}: pixcrawler ",
                )
            )
        report(ours, theirs, args.images)
        if args.compare_at:
            more = url_list(workdir / "more-urls.txt", base_url, args.compare_at)
            larger: list[Run] = []
            for round_number in range(args.rounds):
                (our_dir := workdir / f"pixcrawler-{args.compare_at}-{round_number}").mkdir()
                larger.append(run_ours(more, args.compare_at, our_dir))
                print(f"{args.compare_at:,} photos, round {round_number + 1}: {larger[-1].wall:.1f} s; {load()}")
            compare(ours, larger, (args.images, args.compare_at))
        else:
            print("- the same at 20,000 images as at 2,000: run with --compare-at 20000 (or --images 20000)")
        print(f"\nafter the run: {load()}")
    finally:
        stop.set()
        host.join(5)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
