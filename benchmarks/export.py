"""Export throughput and peak memory: 5,000 then 20,000 generated images, tar and zip; and the transform
against img2dataset's resizer.

    python benchmarks/export.py [--sizes 5000 20000] [--formats tar zip tar+resize] [--photos 300] [--skip-peer]

First the resizers alone, in the same run: img2dataset's `Resizer` (from its own virtualenv, the one
benchmarks/pipeline.py creates) and ours (`pixcrawler.exports.transform`), each in a child process of its own,
one thread, over the same `--photos` 1024x768 JPEGs of benchmarks/pipeline.py, held in memory, at the same
size, mode and output (256, center_crop, JPEG quality 95): images per CPU-second (user + system time of the
loop). Then the exports; `tar+resize` is a tar export with that transform, on as many threads as cores.

Each export runs in a fresh child process whose peak resident set is reset after imports and connections
(Linux `clear_refs`), so "peak MiB" is the export's own high-water mark beside "RSS MiB" before it. S3 is
moto's server in a process of its own (moto keeps objects in memory: inside our process it would be counted
as ours), PostgreSQL is the embedded pgserver. The claim under test: peak memory does not grow with the
number of images (tar keeps no per-image state; zip keeps one small central-directory entry per image, which
it must). The fetch-only peer reads the same objects with the same concurrency and writes nothing: the
ceiling the S3 stand-in allows here.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-data"
BASE_IMAGES = 64
RESIZE = {"image_size": 256, "resize_mode": "center_crop", "encode_format": "jpeg", "encode_quality": 95}
"""The transform both resizers run, in our option names (img2dataset: the same names, `jpg` for jpeg)."""
RESIZE_LOOP = """
import io, json, resource, sys
from pathlib import Path

folder, count, size, mode, quality = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
blobs = [Path(folder, f"{n}.jpg").read_bytes() for n in range(count)]
{setup}
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

resize(blobs[0])
started = cpu()
sizes = [resize(blob) for blob in blobs]
print(json.dumps({"cpu": cpu() - started, "sizes": sorted(set(sizes))}))
"""
"""`python -c RESIZE_LOOP FOLDER COUNT SIZE MODE QUALITY` with `setup` defining `resize(bytes) -> (w, h)`;
prints the CPU seconds of the loop (one warm-up call first, so imports and lazy set-up are not counted)."""
THEIR_RESIZE = """
from img2dataset.resizer import Resizer
resizer = Resizer(image_size=size, resize_mode=mode, resize_only_if_bigger=False, encode_format="jpg",
                  encode_quality=quality)
def resize(blob):
    data, width, height, _, _, error = resizer(io.BytesIO(blob))
    assert error is None, error
    return width, height
"""
OUR_RESIZE = """
from pixcrawler.exports.transform import Transform
from pixcrawler.schemas.export import ExportOptions
options = ExportOptions(image_size=size, resize_mode=mode, encode_format="jpeg", encode_quality=quality)
transform = Transform.of(options, 50_000_000)
def resize(blob):
    out = transform(blob)
    return out.width, out.height
"""


def reset_peak() -> int:
    """Forget the import-time peak (Linux: writing 5 to clear_refs resets VmHWM) and return the resident
    set now, in KiB, so the peak that follows belongs to the measured work alone."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status("VmRSS")


def peak() -> int:
    return _status("VmHWM")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(export_job_id: int) -> None:
    """Run one export to completion and report time, size and memory as JSON on stdout."""
    from pixcrawler import aws, db
    from pixcrawler.exports import worker

    aws.s3().list_buckets()
    with db.session_scope() as session:
        session.connection()
    baseline = reset_peak()
    clock = worker.Clock(owner="benchmark", remaining_ms=lambda: 900_000, reserve_ms=60_000)
    started, cpu = time.perf_counter(), cpu_seconds()
    outcome = worker.run(export_job_id, clock)
    seconds = time.perf_counter() - started
    report = {
        "outcome": outcome.value,
        "seconds": seconds,
        "cpu": cpu_seconds() - cpu,
        "baseline_kb": baseline,
        "peak_kb": peak(),
    }
    print(json.dumps(report))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compare_resizers(photos: int, skip_peer: bool) -> None:
    """Both resizers over the same photos in the same run; images per CPU-second and the ratio."""
    from pipeline import PHOTOS, ensure_peer, ensure_photos, fresh_env, load

    ensure_photos(photos)
    arguments = [str(PHOTOS), str(photos), str(RESIZE["image_size"]), str(RESIZE["resize_mode"])]
    arguments.append(str(RESIZE["encode_quality"]))
    runs = {"pixcrawler (Pillow)": (Path(sys.executable), OUR_RESIZE, {**os.environ})}
    peer = None if skip_peer else ensure_peer()
    if peer is not None:
        runs["img2dataset Resizer (OpenCV)"] = (peer, THEIR_RESIZE, fresh_env(NO_ALBUMENTATIONS_UPDATE="1"))
    print(
        f"resize {photos} photos 1024x768 -> {RESIZE['image_size']} {RESIZE['resize_mode']}, JPEG quality "
        f"{RESIZE['encode_quality']}, one thread each; {load()}"
    )
    rates: dict[str, float] = {}
    for name, (python, setup, env) in runs.items():
        code = RESIZE_LOOP.replace("{setup}", setup)
        done = subprocess.run([str(python), "-c", code, *arguments], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"{name} failed:\n{done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rates[name] = photos / result["cpu"]
        print(f"  {name:>30}: {rates[name]:7.1f} images per CPU-second, output sizes {result['sizes']}", flush=True)
    if len(rates) == 2:
        ours, theirs = rates.values()
        print(f"  ours / img2dataset's: {ours / theirs:.2f}x (goal >= 1.0x); {load()}", flush=True)


def fetch_only(crawl_job_id: int) -> None:
    """The peer: fetch the same objects with the same concurrency and discard them, writing no archive.
    Its rate is the ceiling the S3 stand-in allows on this machine."""
    from sqlalchemy import select

    from pixcrawler import aws, db
    from pixcrawler.models import Image
    from pixcrawler.settings import get_settings

    with db.session_scope() as session:
        keys = list(session.scalars(select(Image.storage_url).where(Image.crawl_job_id == crawl_job_id)))
    settings = get_settings()
    s3 = aws.s3()
    baseline = reset_peak()
    started, cpu = time.perf_counter(), cpu_seconds()
    window = 2 * settings.export_fetch_concurrency  # as many in flight as the export keeps
    total = 0
    with ThreadPoolExecutor(settings.export_fetch_concurrency) as pool:
        for start in range(0, len(keys), window):
            batch = keys[start : start + window]
            total += sum(pool.map(lambda key: len(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()), batch))
    seconds = time.perf_counter() - started
    report = {
        "outcome": "completed",
        "seconds": seconds,
        "cpu": cpu_seconds() - cpu,
        "bytes": total,
        "baseline_kb": baseline,
        "peak_kb": peak(),
    }
    print(json.dumps(report))


def start_moto() -> tuple[subprocess.Popen[str], str]:
    code = (
        "import sys\nfrom moto.server import ThreadedMotoServer\n"
        "s = ThreadedMotoServer('127.0.0.1', 0, verbose=False)\ns.start()\n"
        "print(s.get_host_and_port()[1], flush=True)\nsys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, f"http://127.0.0.1:{process.stdout.readline().strip()}"


def seed(count: int, keywords: list[str]) -> int:
    """A crawl job with `count` stored images (distinct bytes, realistic small JPEGs); returns its id."""
    from sqlalchemy import insert

    from pixcrawler import aws, db, object_keys
    from pixcrawler.models import CrawlJob, Image, JobStatus, Profile, Project
    from pixcrawler_local import samples

    bases = [samples.jpeg(n, 320, 320, quality=92) for n in range(BASE_IMAGES)]
    with db.session_scope() as session:
        user = Profile(id=uuid.uuid4(), email=f"{uuid.uuid4().hex[:8]}@example.com")
        project = Project(user=user, name="bench")
        job = CrawlJob(project=project, name="bench", keywords=keywords, max_images=count, status=JobStatus.COMPLETED)
        session.add(job)
        session.flush()
        project_id, job_id = project.id, job.id
    s3 = aws.s3()

    def make(n: int) -> dict[str, object]:
        data = bases[n % BASE_IMAGES] + n.to_bytes(8, "big")  # bytes after the JPEG end marker: still valid
        digest = hashlib.sha256(data).hexdigest()
        keyword = keywords[n % len(keywords)]
        key = object_keys.image_key(project_id, job_id, keyword, digest, "jpg")
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        return {
            "crawl_job_id": job_id,
            "original_url": f"https://images.example.com/{n}.jpg",
            "filename": f"{keyword}-{n}.jpg",
            "storage_url": key,
            "width": 320,
            "height": 320,
            "file_size": len(data),
            "format": "jpeg",
            "sha256": digest,
            "keyword": keyword,
            "provider": "urls",
            "license": "cc-by",
            "license_url": "https://creativecommons.org/licenses/by/4.0/",
            "creator": f"Creator {n % 97}",
            "title": f"image {n}",
        }

    with ThreadPoolExecutor(16) as pool:
        for start in range(0, count, 1000):
            rows = list(pool.map(make, range(start, min(start + 1000, count))))
            with db.session_scope() as session:
                session.execute(insert(Image).values(rows))
    return job_id


def export_row(crawl_job_id: int, fmt: str, transform: dict[str, Any]) -> int:
    from sqlalchemy import select

    from pixcrawler import db
    from pixcrawler.models import CrawlJob, ExportJob, Project
    from pixcrawler.schemas.export import ExportOptions

    with db.session_scope() as session:
        user_id = session.scalar(
            select(Project.user_id).join(CrawlJob, CrawlJob.project_id == Project.id).where(CrawlJob.id == crawl_job_id)
        )
        row = ExportJob(
            crawl_job_id=crawl_job_id,
            user_id=user_id,
            name=f"bench {fmt}",
            format=fmt,
            export_options=ExportOptions(layout="by_keyword", **transform).model_dump(mode="json"),
        )
        session.add(row)
        session.flush()
        return row.id


def run_child(flag: str, value: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter, so its peak resident set is its own."""
    result = subprocess.run([sys.executable, __file__, flag, str(value)], capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--formats", nargs="+", default=["tar", "zip", "tar+resize"], help="+resize: with RESIZE")
    parser.add_argument("--photos", type=int, default=300, help="photos each resizer transforms (0: skip)")
    parser.add_argument("--skip-peer", action="store_true", help="do not run img2dataset's resizer")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fetch-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.fetch_only:
        fetch_only(args.fetch_only)
        return

    if args.photos:
        compare_resizers(args.photos, args.skip_peer)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the clean-up below when stopped
    import pgserver
    from alembic import command
    from alembic.config import Config
    from pipeline import load

    from pixcrawler import aws, db
    from pixcrawler.models import ExportJob
    from pixcrawler.settings import get_settings

    data_dir = tempfile.mkdtemp(prefix="bench-pg-")
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    moto, endpoint = start_moto()
    os.environ.update(
        DATABASE_URL=f"postgresql+pg8000://postgres@/postgres?unix_sock={data_dir}/.s.PGSQL.5432",
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        DATA_BUCKET=BUCKET,
        DOWNLOAD_LINK_SECRET="bench",
        EXPORT_QUEUE_URL="",
    )
    get_settings.cache_clear()
    aws.reset()
    db.reset()
    try:
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        aws.s3().create_bucket(Bucket=BUCKET)
        header = ("images", "format", "MB", "s", "MB/s", "img/s", "img/CPU-s", "RSS MiB", "peak MiB")
        print(" ".join(f"{name:>10}" if name == "format" else f"{name:>9}" for name in header))
        for size in args.sizes:
            crawl_job_id = seed(size, ["cat", "dog", "bird", "fish"])
            for fmt in ["fetch-only", *args.formats]:
                if fmt == "fetch-only":
                    report = run_child("--fetch-only", crawl_job_id)
                    megabytes = report["bytes"] / 1e6
                else:
                    archive, _, resized = fmt.partition("+")
                    export_id = export_row(crawl_job_id, archive, RESIZE if resized else {})
                    report = run_child("--child", export_id)
                    with db.session_scope() as session:
                        export = session.get(ExportJob, export_id)
                        assert export is not None and report["outcome"] == "completed", export and export.error_message
                        megabytes = (export.file_size or 0) / 1e6
                print(
                    f"{size:>9} {fmt:>10} {megabytes:>9.1f} {report['seconds']:>9.1f} "
                    f"{megabytes / report['seconds']:>9.1f} {size / report['seconds']:>9.0f} "
                    f"{size / report['cpu']:>9.0f} {report['baseline_kb'] / 1024:>9.1f} "
                    f"{report['peak_kb'] / 1024:>9.1f}",
                    flush=True,
                )
            print(f"  {load()}", flush=True)
    finally:
        db.reset()
        moto.terminate()
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
