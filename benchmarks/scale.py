"""Scale: every stage of one job at growing sizes, against the embedded PostgreSQL, without internet or AWS.

    python benchmarks/scale.py [--sizes 10000,100000,1000000] [--stages dispatch,commits,...]
                               [--committers 1,4,16,64]

Three tables in one run: `stages` (below), `committers` (many workers ending chunks of one job at once,
`benchmarks/commits.py`, into one job and into a job each as the control) and `sizing` (the database
connections each recommended setting needs, from the template's one connection per environment).

Per size, one job goes through the stages in order; each stage runs in a fresh child process (`--child`), so
its peak memory is that process's high-water mark over the one invocation (or the invocations, for the
export) less what it held before, and its wall time is the invocation's. Rows the stage before would have
written are synthesised with `INSERT ... SELECT generate_series` when that stage is not what is measured.

- dispatch: a URL-list job of N URLs planned into chunks and their messages sent (SQS answers in-process);
  reports chunks, messages and the job row's size.
- commits: N/100 chunks of 100 images ended one after the other by `accounting.complete_chunk`, as the crawl
  workers end them (Part B of issue #17 measures them concurrently).
- sweep: the scheduled sweep's two statements with N/100 chunks of a running job, 1% of them stuck.
- validation plan / batch / near-dup: planning (batch rows and messages), one batch judged from the crawl's
  facts, and the job's completion with its duplicate pass over the N hashes.
- export: a zip of the N images through the real export worker, suspended after every quarter (four
  invocations); S3 is an in-process stand-in that keeps only object sizes (objects the export reads back, its
  tails and directory records, on disk), image bytes are a fixed 2 KB: the figure is the export's own cost.
  Reports the largest checkpoint any invocation committed.
- listing: `GET /v1/crawl-jobs/{id}/images?keyword=cat&validity=valid` through the API handler, first page and
  a page near the end (cursor of an id 90% of the way), median of 15 calls each; per image is per page / 100.

The table ends with the ratio of each stage's time per image at the largest size to that at the smallest (the
goal: at most 1.25) and the limits each invocation runs under (template.yaml's MemorySize and Timeout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common")]

STAGES = ("dispatch", "commits", "sweep", "validation plan", "validation batch", "near-dup", "export", "listing")
CHUNK = 100
"""Images per crawl chunk (CRAWL_URLS_PER_CHUNK's default)."""
LIMITS = {  # (MiB, seconds) of the function that runs each stage, from template.yaml
    "dispatch": (1024, 60),
    "commits": (1024, 300),
    "sweep": (1024, 60),
    "validation plan": (2048, 300),
    "validation batch": (2048, 300),
    "near-dup": (2048, 300),
    "export": (1024, 900),
    "listing": (1024, 29),
}
SQS_BATCH_MS = 15
"""Assumed latency of one SendMessageBatch call to real SQS from Lambda, for the dispatch estimate."""
IMAGE_BYTES = random.Random(0).randbytes(2048)


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ------------------------------------------------------------------------------------------------ parent


def synthesise(stage: str, size: int, ids: dict[str, int]) -> None:
    """The rows `stage` starts from at `size`, written by the database itself."""
    from sqlalchemy import text

    from pixcrawler.db import session_scope

    with session_scope() as session:
        run = session.execute
        if stage == "dispatch":
            ids["user"] = 1
            run(text("INSERT INTO profiles (id, email) VALUES (md5(:n)::uuid, :n || '@example.com')"), {"n": str(size)})
            ids["project"] = run(
                text("INSERT INTO projects (name, user_id) VALUES ('scale', md5(:n)::uuid) RETURNING id"),
                {"n": str(size)},
            ).scalar_one()
            ids["dispatch"] = run(
                text(
                    """INSERT INTO crawl_jobs (project_id, name, keywords, providers, max_images, urls)
                    SELECT :project, 'urls', '["cat"]', '["urls"]', :size,
                           jsonb_agg('http://127.0.0.1:8000/images/' || n || '.jpg' ORDER BY n)
                    FROM generate_series(1, :size) AS n RETURNING id"""
                ),
                {"project": ids["project"], "size": size},
            ).scalar_one()
        elif stage == "commits":
            chunks = size // CHUNK
            ids["crawl"] = run(
                text(
                    """INSERT INTO crawl_jobs (project_id, name, keywords, providers, max_images, status,
                                               total_chunks, active_chunks, started_at)
                    VALUES (:project, 'crawl', '["cat", "dog", "bird"]', '["urls"]', :size, 'running',
                            :chunks, :chunks, now()) RETURNING id"""
                ),
                {"project": ids["project"], "size": size, "chunks": chunks},
            ).scalar_one()
            run(
                text(
                    """INSERT INTO crawl_chunks (crawl_job_id, chunk_index, keyword, provider, status, attempts)
                    SELECT :job, i, 'cat', 'urls', 'running', 1 FROM generate_series(0, :chunks - 1) AS i"""
                ),
                {"job": ids["crawl"], "chunks": chunks},
            )
        elif stage == "sweep":
            chunks = size // CHUNK
            ids["swept"] = run(
                text(
                    """INSERT INTO crawl_jobs (project_id, name, keywords, providers, max_images, status,
                                               total_chunks, active_chunks, started_at)
                    VALUES (:project, 'swept', '["cat"]', '["urls"]', :size, 'running', :chunks, :chunks, now())
                    RETURNING id"""
                ),
                {"project": ids["project"], "size": size, "chunks": chunks},
            ).scalar_one()
            run(
                text(
                    """INSERT INTO crawl_chunks (crawl_job_id, chunk_index, keyword, provider, status, updated_at)
                    SELECT :job, i, 'cat', 'urls',
                           CASE WHEN mod(i, 100) = 0 THEN 'running'
                                WHEN mod(i, 2) = 0 THEN 'completed' ELSE 'pending' END,
                           CASE WHEN mod(i, 100) = 0 THEN now() - interval '1 hour' ELSE now() END
                    FROM generate_series(0, :chunks - 1) AS i"""
                ),
                {"job": ids["swept"], "chunks": chunks},
            )
        elif stage == "validation plan":
            ids["validation"] = run(
                text("INSERT INTO validation_jobs (crawl_job_id, name) VALUES (:job, 'scale') RETURNING id"),
                {"job": ids["crawl"]},
            ).scalar_one()
        elif stage == "near-dup":  # every batch judged: the images valid, the batches completed
            run(text("UPDATE images SET is_valid = true WHERE crawl_job_id = :job"), {"job": ids["crawl"]})
            done = {"v": ids["validation"]}
            run(text("UPDATE validation_batches SET status = 'completed' WHERE validation_job_id = :v"), done)
            run(text("UPDATE validation_jobs SET completed_batches = total_batches WHERE id = :v"), done)
        elif stage == "export":
            ids["export"] = run(
                text(
                    """INSERT INTO export_jobs (crawl_job_id, user_id, name, format, export_options)
                    VALUES (:job, md5(:n)::uuid, 'scale', 'zip', '{"only_valid": false}') RETURNING id"""
                ),
                {"job": ids["crawl"], "n": str(size)},
            ).scalar_one()
    if stage == "near-dup":
        with session_scope() as session:
            session.execute(text("ANALYZE images"))


def run_child(stage: str, size: int, ids: dict[str, int], env: dict[str, str]) -> dict[str, Any]:
    arguments = [sys.executable, __file__, "--child", stage, "--size", str(size), "--ids", json.dumps(ids)]
    done = subprocess.run(arguments, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} at {size:,} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| stage | images | invocations | wall s | µs/image | peak MiB: growth, process | limit "
        "| largest row / checkpoint "
        "| notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        memory, timeout = LIMITS[r["stage"]]
        over = r["process_mib"] > memory or r["wall"] / r.get("invocations", 1) > timeout
        lines.append(
            f"| {r['stage']} | {r['size']:,} | {r.get('invocations', 1):,} | {r['wall']:.2f} | "
            f"{per_image(r) * 1e6:.1f} | {r['peak_mib']:.1f}, {r['process_mib']:.0f} | {memory} MiB, {timeout} s"
            f"{' OVER' if over else ''} | {_bytes(r.get('largest', 0))} | {r.get('notes', '')} |"
        )
    sizes = sorted({r["size"] for r in results})
    if len(sizes) > 1:
        lines += ["", f"time per image at {sizes[-1]:,} / at {sizes[0]:,} (goal: at most 1.25):"]
        for stage in STAGES:
            per = {r["size"]: per_image(r) for r in results if r["stage"] == stage}
            if sizes[0] in per and sizes[-1] in per:
                ratio = per[sizes[-1]] / per[sizes[0]]
                mark = "" if ratio <= 1.25 else "  MISSED"
                lines.append(f"  {stage:<17} {ratio:6.2f}{mark}")
    return "\n".join(lines)


def per_image(result: dict[str, Any]) -> float:
    """Seconds per image: of the job, or of the batch or page when the stage handles one (`per`)."""
    return float(result["wall"]) / int(result.get("per", result["size"]))


def _bytes(count: int) -> str:
    if not count:
        return ""
    return f"{count / 1024 / 1024:.2f} MiB" if count >= 1024 * 1024 else f"{count / 1024:.1f} KiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset, in order")
    parser.add_argument("--committers", default="1,4,16,64", help="the committers table's levels ('' skips it)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measured = CHILDREN[args.child](args.size, json.loads(args.ids))
        print(json.dumps(measured))
        return 0

    import pgserver

    from pixcrawler.settings import get_settings
    from pixcrawler_local import database

    given_database = os.environ.get("DATABASE_URL")
    wanted = [stage for stage in args.stages.split(",") if stage]
    data_dir = Path(tempfile.mkdtemp(prefix="pixcrawler-scale-"))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    results: list[dict[str, Any]] = []
    try:
        url = f"postgresql+pg8000://postgres@/postgres?unix_sock={data_dir}/.s.PGSQL.5432"
        database.migrate(ROOT, url)
        get_settings.cache_clear()
        env = {**os.environ, "DATABASE_URL": url, "POWERTOOLS_LOG_LEVEL": "WARNING", "DATA_BUCKET": "scale"}
        env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
        for size in (int(value) for value in args.sizes.split(",")):
            ids: dict[str, int] = {}
            for stage in STAGES:
                synthesise(stage, size, ids)
                if stage in wanted or stage == "commits":  # the later stages need the images
                    try:
                        result = {"stage": stage, "size": size, **run_child(stage, size, ids, env)}
                    except RuntimeError as error:
                        if stage == "commits":
                            raise
                        print(error, file=sys.stderr)
                        reason = str(error).strip().splitlines()[-1][:200]
                        nan = float("nan")
                        result = {"stage": stage, "size": size, "wall": nan, "peak_mib": nan, "process_mib": nan}
                        result["notes"] = f"FAILED: {reason}"
                    if stage in wanted:
                        results.append(result)
                    print(
                        f"  {stage:<17} {size:>9,} {result['wall']:8.2f} s {result['process_mib']:8.1f} MiB", flush=True
                    )
        print(report(results))
    finally:
        restore_environment("DATABASE_URL", given_database)  # the committers start their own server
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
    if args.committers:
        from benchmarks.commits import committers_table

        counts = [int(value) for value in args.committers.split(",")]
        print(f"\ncommitters: chunks of {CHUNK} new images ended at once into one job\n")
        print(committers_table(counts, chunks=400, rows=CHUNK, rounds=1))
    print("\nsizing: database connections at most, one per Lambda environment (README, Scaling and cost)\n")
    print(sizing_table())
    return 0


def restore_environment(name: str, value: str | None) -> None:
    """Put a variable back as it was (`database.migrate` points DATABASE_URL at the database it migrates), and
    drop what was made from it (the settings, the engine of the stages' synthesised rows)."""
    from pixcrawler import db
    from pixcrawler.settings import get_settings

    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    get_settings.cache_clear()
    db.reset()


SIZING = (  # job size, CrawlMaxConcurrency, WorkerMaxConcurrency, ApiMaxConcurrency, database
    ("10,000 images", 10, 5, 20, "db.t4g.micro (about 100 connections)"),
    ("100,000 images", 50, 5, 20, "db.t4g.small (about 200)"),
    ("1,000,000 images", 200, 10, 50, "db.t4g.medium (about 400) behind RDS Proxy"),
)
WORKER_QUEUES = 3  # dispatch, validation, export: each event source bounded by WorkerMaxConcurrency
ALWAYS = 1  # the sweep (the migration hook runs only during a deploy)


def sizing_table() -> str:
    """The recommended settings and the connections they need: crawl + 3 x workers + the sweep + the API."""
    lines = [
        "| job size | CrawlMaxConcurrency | WorkerMaxConcurrency | ApiMaxConcurrency | connections at most "
        "| database |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, crawl, workers, api, database in SIZING:
        connections = crawl + WORKER_QUEUES * workers + ALWAYS + api
        lines.append(f"| {label} | {crawl} | {workers} | {api} | {connections} | {database} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ children


class Measured:
    """Wall time and peak-memory growth of the code inside `with`, in the child process."""

    def __enter__(self) -> Measured:
        self.before = peak_kib()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self.started
        self.peak_mib = (peak_kib() - self.before) / 1024

    def result(self, **extra: Any) -> dict[str, Any]:
        return {"wall": self.wall, "peak_mib": self.peak_mib, "process_mib": peak_kib() / 1024, **extra}


class _SQS:
    """SQS answered at once, counting messages (moto's in-process SQS walks every queued message on each send,
    which makes sending N messages cost N squared)."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message(self, **_: Any) -> dict[str, Any]:
        self.sent += 1
        return {"MessageId": str(uuid.uuid4())}

    def send_message_batch(self, Entries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        self.sent += len(Entries)
        return {"Successful": [{"Id": entry["Id"], "MessageId": str(uuid.uuid4())} for entry in Entries]}


SQS = _SQS()


def stand_ins(s3: Any = None) -> None:
    """Every queue URL set, SQS (and S3 when given) answered in this process."""
    from pixcrawler import aws
    from pixcrawler.settings import get_settings

    for name in ("dispatch", "crawl", "validation", "export"):
        os.environ[f"{name.upper()}_QUEUE_URL"] = f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}"
    get_settings.cache_clear()
    aws.sqs = lambda: SQS  # type: ignore[assignment]
    if s3 is not None:
        aws.s3 = lambda: s3  # type: ignore[assignment]


def _scalar(sql: str, **values: Any) -> Any:
    from sqlalchemy import text

    from pixcrawler.db import session_scope

    with session_scope() as session:
        return session.execute(text(sql), values).scalar()


def child_dispatch(size: int, ids: dict[str, int]) -> dict[str, Any]:
    from pixcrawler.crawl.planning import dispatch
    from pixcrawler.messages import DispatchMessage

    stand_ins()
    _scalar("SELECT 1")
    with Measured() as measured:
        sent = dispatch(DispatchMessage(crawl_job_id=ids["dispatch"]))
    row = _scalar("SELECT octet_length(c::text) FROM crawl_jobs AS c WHERE id = :id", id=ids["dispatch"])
    stored = _scalar("SELECT pg_column_size(c.*) FROM crawl_jobs AS c WHERE id = :id", id=ids["dispatch"])
    estimate = SQS.sent / 10 * SQS_BATCH_MS / 1000
    notes = (
        f"{len(sent):,} chunks = messages; job row {_bytes(row)} as text, "
        f"{_bytes(stored)} stored (TOAST-compressed); real SQS adds ~{estimate:.0f} s ({SQS_BATCH_MS} ms a batch of 10)"
    )
    return measured.result(largest=row, notes=notes)


def _stored(job: int, chunk: int) -> list[Any]:
    from benchmarks.commits import stored_image

    keywords = ("cat", "dog", "bird")
    return [stored_image(job, f"{job}-{n}", keywords[n % 3], n) for n in range(chunk * CHUNK, (chunk + 1) * CHUNK)]


def child_commits(size: int, ids: dict[str, int]) -> dict[str, Any]:
    from pixcrawler.crawl.accounting import ChunkResult, complete_chunk
    from pixcrawler.db import session_scope

    job = ids["crawl"]
    chunk_ids = json.loads(
        _scalar("SELECT json_agg(id ORDER BY chunk_index)::text FROM crawl_chunks WHERE crawl_job_id = :j", j=job)
    )
    with Measured() as measured:
        for index, chunk_id in enumerate(chunk_ids):
            result = ChunkResult(found=CHUNK, stored=_stored(job, index), refused={})
            with session_scope() as session:
                complete_chunk(session, job, chunk_id, result)
    status = _scalar("SELECT status FROM crawl_jobs WHERE id = :j", j=job)
    downloaded = _scalar("SELECT downloaded_images FROM crawl_jobs WHERE id = :j", j=job)
    assert downloaded == size and status == "completed", (status, downloaded)
    largest = _scalar("SELECT max(octet_length(c::text)) FROM crawl_chunks AS c WHERE crawl_job_id = :j", j=job)
    return measured.result(invocations=len(chunk_ids), largest=largest, notes=f"{len(chunk_ids):,} chunks of {CHUNK}")


def child_sweep(size: int, ids: dict[str, int]) -> dict[str, Any]:
    from pixcrawler.crawl.planning import redispatch_stalled, requeue_stuck

    stand_ins()
    _scalar("SELECT 1")
    with Measured() as measured:
        stalled, stuck = redispatch_stalled(), requeue_stuck()
    return measured.result(notes=f"{stalled} stalled job(s), {stuck:,} stuck chunk(s) re-queued")


def child_validation_plan(size: int, ids: dict[str, int]) -> dict[str, Any]:
    from pixcrawler.validation import worker

    stand_ins()
    _scalar("SELECT 1")
    with Measured() as measured:
        worker.plan(ids["validation"])
    batches = _scalar("SELECT total_batches FROM validation_jobs WHERE id = :v", v=ids["validation"])
    return measured.result(notes=f"{batches:,} batches = messages")


def child_validation_batch(size: int, ids: dict[str, int]) -> dict[str, Any]:
    """One batch, judged from the facts the crawl stored (no image read); per image is per batch image."""
    from pixcrawler.validation import worker

    count = _scalar(
        "SELECT image_count FROM validation_batches WHERE validation_job_id = :v AND batch_index = 0",
        v=ids["validation"],
    )
    stand_ins()
    with Measured() as measured:
        worker.run_batch(ids["validation"], 0)
    return {**measured.result(notes=f"one batch of {count:,} images, time per image of the batch"), "per": count}


def child_near_dup(size: int, ids: dict[str, int]) -> dict[str, Any]:
    from pixcrawler.validation import worker

    _scalar("SELECT 1")
    with Measured() as measured:
        worker.finish_if_done(ids["validation"])
    status = _scalar("SELECT status FROM validation_jobs WHERE id = :v", v=ids["validation"])
    assert status == "completed", status
    removed = _scalar("SELECT count(*) FROM images WHERE crawl_job_id = :j AND is_valid = false", j=ids["crawl"])
    return measured.result(notes=f"the job's completion: {removed:,} duplicate(s) among random 64-bit hashes")


class _Body:
    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> bytes:
        return self._path.read_bytes()

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        with self._path.open("rb") as file:
            while chunk := file.read(size):
                yield chunk


class _S3:
    """The calls an export makes, answered at once: parts are counted, not kept; small objects it reads back
    (tails, zip directory records) go to disk, as they would to S3, not into this process's memory."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.parts, self.part_bytes, self.objects = folder, 0, 0, 0

    def _path(self, key: str) -> Path:
        return self.folder / hashlib.md5(key.encode()).hexdigest()

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "upload"}

    def upload_part(self, Body: bytes, **_: Any) -> dict[str, Any]:
        self.parts += 1
        self.part_bytes += len(Body)
        return {"ETag": f'"{self.parts}"'}

    def put_object(self, Key: str, Body: Any, **_: Any) -> dict[str, Any]:
        with self._path(Key).open("wb") as file:
            if isinstance(Body, bytes | bytearray):
                file.write(Body)
            else:
                shutil.copyfileobj(Body, file)
        self.objects += 1
        return {}

    def get_object(self, Key: str, **_: Any) -> dict[str, Any]:
        return {"Body": _Body(self._path(Key))}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def get_paginator(self, _: str) -> Any:
        class Pages:
            @staticmethod
            def paginate(**__: Any) -> list[dict[str, Any]]:
                return [{}]

        return Pages()

    def delete_objects(self, **_: Any) -> dict[str, Any]:
        return {}

    def delete_object(self, Key: str, **_: Any) -> dict[str, Any]:
        self._path(Key).unlink(missing_ok=True)
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}


class _Reader:
    def __init__(self, _: str) -> None:
        pass

    @staticmethod
    def get(_: str) -> bytes:
        return IMAGE_BYTES


class _Context:
    """A Lambda context whose remaining time falls below the export's reserve after `images` checks."""

    aws_request_id = "scale"

    def __init__(self, images: int) -> None:
        self.left = images

    def get_remaining_time_in_millis(self) -> int:
        self.left -= 1
        return 900_000 if self.left > 0 else 1_000


def child_export(size: int, ids: dict[str, int]) -> dict[str, Any]:
    from pixcrawler import transfers
    from pixcrawler.exports import worker

    folder = Path(tempfile.mkdtemp(prefix="scale-export-"))
    stand_in = _S3(folder)
    transfers.Reader = _Reader  # type: ignore[assignment,misc]
    os.environ["DOWNLOAD_LINK_SECRET"] = "scale"
    checkpoints, outcome = [], None
    stand_ins(stand_in)
    _scalar("SELECT 1")
    with Measured() as measured:
        while outcome != worker.Outcome.COMPLETED:
            outcome = worker.run(ids["export"], worker.clock_for(_Context(size // 4 + 1)))
            assert outcome in (worker.Outcome.CONTINUED, worker.Outcome.COMPLETED), outcome
            checkpoints.append(
                _scalar("SELECT octet_length(checkpoint::text) FROM export_jobs WHERE id = :e", e=ids["export"]) or 0
            )
    shutil.rmtree(folder, ignore_errors=True)
    exported = _scalar("SELECT exported_images FROM export_jobs WHERE id = :e", e=ids["export"])
    assert exported == size, exported
    largest = max(checkpoints)
    notes = (
        f"{len(checkpoints)} invocations, checkpoints {', '.join(_bytes(c) for c in checkpoints if c)}; "
        f"{stand_in.part_bytes / 1024 / 1024:.0f} MiB in {stand_in.parts} parts"
    )
    return measured.result(invocations=len(checkpoints), largest=largest, notes=notes)


def child_listing(size: int, ids: dict[str, int]) -> dict[str, Any]:
    from pixcrawler.api import pagination
    from pixcrawler_local.functions import load_module
    from tests.events import http_event, lambda_context

    app = load_module(ROOT / "functions" / "api" / "app.py", "api")
    user = _scalar("SELECT md5(:n)::uuid::text", n=str(size))
    ids_of_cats = _scalar(
        "SELECT percentile_disc(0.9) WITHIN GROUP (ORDER BY id) FROM images WHERE crawl_job_id = :j", j=ids["crawl"]
    )
    path = f"/v1/crawl-jobs/{ids['crawl']}/images"

    def page(cursor: str | None) -> float:
        query = {"keyword": "cat", "validity": "valid", "limit": "100", **({"cursor": cursor} if cursor else {})}
        started = time.perf_counter()
        reply = app.lambda_handler(http_event("GET", path, user=user, query=query), lambda_context("api"))
        took = time.perf_counter() - started
        assert reply["statusCode"] == 200 and json.loads(reply["body"])["items"], reply["body"][:300]
        return took

    page(None)
    with Measured() as measured:
        first = statistics.median(page(None) for _ in range(15))
        deep = statistics.median(page(pagination.encode(ids_of_cats)) for _ in range(15))
    return {
        "wall": first,
        "peak_mib": measured.peak_mib,
        "process_mib": peak_kib() / 1024,
        "per": 100,
        "notes": f"first page {first * 1000:.1f} ms, page at 90% {deep * 1000:.1f} ms (100 items)",
    }


CHILDREN: dict[str, Callable[[int, dict[str, int]], dict[str, Any]]] = {
    "dispatch": child_dispatch,
    "commits": child_commits,
    "sweep": child_sweep,
    "validation plan": child_validation_plan,
    "validation batch": child_validation_batch,
    "near-dup": child_near_dup,
    "export": child_export,
    "listing": child_listing,
}

if __name__ == "__main__":
    raise SystemExit(main())
