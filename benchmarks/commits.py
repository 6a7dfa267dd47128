"""The crawl's commit path alone: many workers ending chunks of ONE job at once (issue #17, "many workers").

    python benchmarks/commits.py [--committers 1,4,16,64] [--chunks 400] [--rows 100] [--rounds 1]

Each committer is a forked process with its own database connection, as each Lambda environment has one. It
calls `pixcrawler.crawl.accounting.complete_chunk` in its own transaction (`session_scope`, so each commit
waits for its WAL flush as in production) for its share of `--chunks` chunks of `--rows` new images each,
rows shaped as the crawl worker builds them (ingest facts included); the rows are built before the committers
start together, so only the commit path is measured. Downloads and uploads are not part of it.

The share of time spent waiting for a lock is sampled, not instrumented, so it measures any design alike:
every few milliseconds the parent reads `pg_stat_activity` and counts the committers' backends whose
`wait_event_type` is `Lock` (a row lock shows as `transactionid` or `tuple`); the share is the mean count
over the number of committers. Each level ends by checking what the commits must leave: the job completed,
`downloaded_images` equal to its image rows and to `chunks x rows`, every chunk completed once.

Each level runs twice: into one job, then as a control with the same committers and chunks spread over one job
per committer, where no row is shared. Where the two agree, the job row is not what limits the commits; the
machine is (on this 2-core machine shared with other sessions, the load average is printed with the table).

The database is an embedded PostgreSQL (default settings: `fsync` and `synchronous_commit` on) copied from
the local stack's migrated template, or `DATABASE_URL` when set.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common"), str(ROOT / "local")]

APPLICATION = "pixcrawler-commit-bench"
"""`application_name` of the committers' connections: how the sampler tells them from other backends."""
SAMPLE_EVERY = 0.005


@dataclass(frozen=True, slots=True)
class Level:
    """One measured run: `committers` processes ending `chunks` chunks of `rows` images into one job."""

    committers: int
    chunks: int
    images: int
    seconds: float
    lock_share: float
    commit_ms: float
    """Median wall time of one `complete_chunk` transaction, commit included."""

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


@contextmanager
def database() -> Iterator[str]:
    """`DATABASE_URL`, else an embedded PostgreSQL started from the migrated template for this run."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    from pixcrawler_local.database import start_embedded

    directory = Path(tempfile.mkdtemp(prefix="pixcrawler-commits-"))
    server, url = start_embedded(directory / "data", ROOT)
    try:
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


def seed_job(chunks: int, rows: int) -> tuple[int, list[int]]:
    """A running URL-list job with `chunks` running chunks and room for every image they bring."""
    from sqlalchemy import text

    from pixcrawler.db import session_scope

    with session_scope() as session:
        user = session.execute(
            text("INSERT INTO profiles (id, email) SELECT u, u || '@example.com' FROM gen_random_uuid() u RETURNING id")
        ).scalar_one()
        project = session.execute(
            text("INSERT INTO projects (user_id, name) VALUES (:user, 'commits') RETURNING id"), {"user": user}
        ).scalar_one()
        job = session.execute(
            text(
                "INSERT INTO crawl_jobs (project_id, name, keywords, providers, max_images, status, total_chunks,"
                " active_chunks, started_at) VALUES (:project, 'commits', '[\"cat\"]', '[\"urls\"]', :cap,"
                " 'running', :chunks, :chunks, now()) RETURNING id"
            ),
            {"project": project, "cap": chunks * rows, "chunks": chunks},
        ).scalar_one()
        ids = session.execute(
            text(
                "INSERT INTO crawl_chunks (crawl_job_id, chunk_index, keyword, provider, status, attempts,"
                " started_at) SELECT :job, n, 'cat', 'urls', 'running', 1, now() FROM generate_series(0, :last) n"
                " RETURNING id"
            ),
            {"job": job, "last": chunks - 1},
        ).scalars()
        return job, sorted(ids)


def stored_image(job_id: int, seed: str, keyword: str, index: int) -> Any:
    """One image as `worker._store` hands it to the commit (project 1), its values derived from `seed`."""
    from pixcrawler import object_keys
    from pixcrawler.crawl.accounting import StoredImage

    sha = hashlib.sha256(seed.encode()).hexdigest()
    key = object_keys.image_key(1, job_id, keyword, sha, "jpg")
    row = {
        "original_url": f"https://images.example.com/photos/{sha[:20]}.jpg",
        "filename": f"{sha[:16]}.jpg",
        "storage_url": key,
        "width": 1024,
        "height": 768,
        "format": "jpeg",
        "file_size": 75_000 + index % 20_000,
        "sha256": sha,
        "keyword": keyword,
        "provider": "urls",
        "source_url": None,
        "title": None,
        "license": None,
        "license_url": None,
        "creator": None,
        "decodable": True,
        "decode_error": None,
        "mode": "RGB",
        "orientation": None,
        "blank_variance": 1234.5,
        "phash": int.from_bytes(bytes.fromhex(sha[:16]), "big", signed=True),
        "thumbnail_format": "jpeg",
    }
    return StoredImage(key=key, sha256=sha, row=row)


def chunk_result(job_id: int, chunk_id: int, rows: int) -> object:
    """What a crawled chunk of `rows` new images hands to the commit: rows as `worker._store` builds them."""
    from pixcrawler.crawl.accounting import ChunkResult

    stored = [stored_image(job_id, f"{job_id}/{chunk_id}/{index}", "cat", index) for index in range(rows)]
    return ChunkResult(found=rows, stored=stored, refused={})


def committer(job_id: int, chunk_ids: Sequence[int], rows: int, start: Barrier, report: Connection) -> None:
    """One worker: its own connection, its chunks' results built up front, then one transaction per chunk."""
    from sqlalchemy import text

    from pixcrawler import db
    from pixcrawler.crawl.accounting import complete_chunk

    db.reset()  # the parent forked without an engine; this process opens its own connection
    with db.session_scope() as session:
        session.execute(text(f"SET application_name = '{APPLICATION}'"))
    results = [(chunk_id, chunk_result(job_id, chunk_id, rows)) for chunk_id in chunk_ids]
    durations, inserted = [], 0
    start.wait()
    began = time.perf_counter()
    for chunk_id, result in results:
        started = time.perf_counter()
        with db.session_scope() as session:
            inserted += len(complete_chunk(session, job_id, chunk_id, result).inserted)  # type: ignore[arg-type]
        durations.append(time.perf_counter() - started)
    report.send((began, time.perf_counter(), inserted, durations))
    db.reset()


def sample_lock_waits(url: str, committers: int, done: threading.Event) -> list[float]:
    """The fraction of committers waiting for a lock, every `SAMPLE_EVERY` seconds until `done`."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"ssl_context": False})
    query = text(
        "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity "
        "WHERE application_name = :name AND pid <> pg_backend_pid()"
    )
    shares = []
    with engine.connect() as connection:
        while not done.is_set():
            shares.append(connection.execute(query, {"name": APPLICATION}).scalar_one() / committers)
            connection.rollback()
            time.sleep(SAMPLE_EVERY)
    engine.dispose()
    return shares


def measure(url: str, committers: int, chunks: int, rows: int, *, shared: bool = True) -> Level:
    """`chunks` chunks committed by `committers` processes: into one job (`shared`), or, as the control that
    shows what the machine itself allows, each committer into a job of its own."""
    from pixcrawler import db

    chunks = max(chunks, committers)
    if shared:
        job_id, chunk_ids = seed_job(chunks, rows)
        shares = [(job_id, chunk_ids[index::committers]) for index in range(committers)]
        jobs = {job_id: chunks}
    else:
        shares = [seed_job(len(range(index, chunks, committers)), rows) for index in range(committers)]
        jobs = {job_id: len(chunk_ids) for job_id, chunk_ids in shares}
    db.reset()  # no connection may cross the fork
    context = multiprocessing.get_context("fork")
    start = context.Barrier(committers + 1)
    pipes, processes = [], []
    for job_id, chunk_ids in shares:
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(target=committer, args=(job_id, chunk_ids, rows, start, sending), daemon=True)
        process.start()
        pipes.append(receiving)
        processes.append(process)
    done = threading.Event()
    waits: list[float] = []
    sampler = threading.Thread(target=lambda: waits.extend(sample_lock_waits(url, committers, done)))
    start.wait()
    sampler.start()
    reports = [pipe.recv() for pipe in pipes]
    done.set()
    sampler.join()
    for process in processes:
        process.join()
    for job_id, count in jobs.items():
        check(job_id, count, rows)
    truncate()
    images = sum(report[2] for report in reports)
    seconds = max(report[1] for report in reports) - min(report[0] for report in reports)
    durations = [duration for report in reports for duration in report[3]]
    return Level(
        committers=committers,
        chunks=chunks,
        images=images,
        seconds=seconds,
        lock_share=statistics.fmean(waits) if waits else 0.0,
        commit_ms=statistics.median(durations) * 1000,
    )


def check(job_id: int, chunks: int, rows: int) -> None:
    """What the commits must leave behind, or the figure means nothing."""
    from sqlalchemy import text

    from pixcrawler.db import session_scope

    with session_scope() as session:
        status, downloaded, completed, active = session.execute(
            text("SELECT status, downloaded_images, completed_chunks, active_chunks FROM crawl_jobs WHERE id = :job"),
            {"job": job_id},
        ).one()
        stored = session.execute(text("SELECT count(*) FROM images WHERE crawl_job_id = :job"), {"job": job_id})
        found = (status, downloaded, stored.scalar_one(), completed, active)
        expected = ("completed", chunks * rows, chunks * rows, chunks, 0)
        if found != expected:
            raise SystemExit(f"job {job_id} ended as {found}, expected {expected}")


def truncate() -> None:
    """Every level starts from empty tables and a fresh checkpoint."""
    from sqlalchemy import text

    from pixcrawler.db import session_scope

    with session_scope() as session:
        session.execute(text("TRUNCATE profiles, projects, crawl_jobs, crawl_chunks, images, activity_logs CASCADE"))
    with session_scope() as session:
        session.connection().exec_driver_sql("CHECKPOINT")


def table(levels: Sequence[tuple[Level, Level]], rows: int) -> str:
    """One line per number of committers: into one job, and the control (a job each)."""
    lines = [
        f"| committers | chunks of {rows} rows | images/s into one job | commit, median ms | waiting for a lock "
        "| images/s, a job per committer (control) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {one.committers} | {one.chunks} | {one.images_per_second:,.0f} | {one.commit_ms:.1f} "
        f"| {one.lock_share:.0%} | {apart.images_per_second:,.0f} |"
        for one, apart in levels
    ]
    return "\n".join(lines)


def median_round(rounds: list[Level]) -> Level:
    return sorted(rounds, key=lambda level: level.images_per_second)[len(rounds) // 2]


def committers_table(committers: Sequence[int], chunks: int, rows: int, rounds: int) -> str:
    """Each number of committers into one job and as the control, the median of `rounds`: the table, with the
    load it ran under (`benchmarks/scale.py` prints it as its `committers` table)."""
    with database() as url:
        os.environ["DATABASE_URL"] = url
        levels = []
        for count in committers:
            one, apart = (
                median_round([measure(url, count, chunks, rows, shared=shared) for _ in range(rounds)])
                for shared in (True, False)
            )
            levels.append((one, apart))
            print(
                f"{count} committer(s): {one.images_per_second:,.0f} images/s into one job, "
                f"{apart.images_per_second:,.0f} into a job each",
                file=sys.stderr,
            )
    load = f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores shared with other sessions)"
    return f"{load}\n{table(levels, rows)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--committers", default="1,4,16,64", help="comma-separated numbers of concurrent committers")
    parser.add_argument("--chunks", type=int, default=400, help="chunks committed per level (at least one each)")
    parser.add_argument("--rows", type=int, default=100, help="new images per chunk (CRAWL_URLS_PER_CHUNK)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per level; the median round is printed")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    counts = [int(value) for value in args.committers.split(",")]
    print(committers_table(counts, args.chunks, args.rows, args.rounds))


if __name__ == "__main__":
    main()
