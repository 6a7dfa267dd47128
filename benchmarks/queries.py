"""Every SQL statement the product issues, measured at volume: access path, rows and median time per statement,
and what each of the original brief's indexes is worth.

    python benchmarks/queries.py [--runs 9] [--write]

1. Record: the local stack (the deployed handlers, moto, an embedded PostgreSQL) runs the demo dataset through
   the API (crawl, validation, export, download) and then every other API route and the sweep, while an
   SQLAlchemy `before_cursor_execute` listener keeps each distinct statement with the parameters it was sent
   with. Nothing here lists statements by hand, so a new query shows up in the next run.
2. Load, into the same database before recording: 1,000 profiles, 10,000 projects, 100,000 crawl jobs (300,000
   chunks), 2,000,000 images, 1,000,000 activity rows, 20,000 validation and 20,000 export jobs, each with
   `INSERT ... SELECT generate_series` (no rows cross the wire), skewed so one user owns about a sixth of
   everything and one project holds a single crawl job of 100,000 images; then `ANALYZE`.
3. Replay: each statement with its recorded ids mapped to that heavy user, project and job (the recording ran
   with every id sequence moved to its own range, so an id's table is known from its value), under
   `EXPLAIN (ANALYZE, FORMAT JSON)` for the plan and then `--runs` times for the median. Writes run inside a
   transaction that is rolled back. Then the same per original index, dropped inside a rolled-back transaction.
4. Deleting the project that holds 100,000 images (rolled back), with the time each cascade took.

The load takes about two minutes on a shared 2-core machine (the images dominate). `--write` puts the table
into the measured section of docs/DATABASE_SCHEMA.md, which `docs/generate_schema.py` keeps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common")]

SCHEMA_DOC = ROOT / "docs" / "DATABASE_SCHEMA.md"
LARGE_TABLES = ("images", "crawl_jobs", "activity_logs", "export_jobs")
API_READ_GOAL_MS = 5.0

VOLUME = {
    "profiles": 1_000,
    "projects": 10_000,
    "crawl_jobs": 100_000,
    "crawl_chunks": 300_000,
    "images": 2_000_000,
    "activity_logs": 1_000_000,
    "validation_jobs": 20_000,
    "export_jobs": 20_000,
}
BIG_JOB_IMAGES = 100_000
"""Images of crawl job 1, the only job of project 1: the project whose deletion is measured."""
TYPICAL_JOB_IMAGES = 40
"""Images of the last crawl job, in the last project of the last profile: the typical sample."""

MEASURED_INDEXES = {
    "ix_project_user_id": "projects",
    "ix_crawl_job_status": "crawl_jobs",
    "ix_crawl_job_project_status": "crawl_jobs",
    "ix_image_crawl_job_id": "images",
    "ix_activity_log_user_id": "activity_logs",
    "ix_activity_log_timestamp": "activity_logs",
    "ix_validation_job_status": "validation_jobs",
    "ix_export_job_status": "export_jobs",
    "ix_export_job_user_id": "export_jobs",
    "ix_crawl_jobs_project_id": "crawl_jobs",
    "ix_validation_jobs_crawl_job_id": "validation_jobs",
    "ix_export_jobs_crawl_job_id": "export_jobs",
    "ix_crawl_chunk_status_updated": "crawl_chunks",
    "ix_images_crawl_job_id_keyword": "images",
    "ix_images_crawl_job_id_is_valid": "images",
}
"""The indexes the original schema brief named, then those added since; each one's value is measured by
dropping it."""

# Where each table's id sequence starts while the flows are recorded, far above the loaded rows, so a recorded
# integer parameter says which table's id it is.
ID_RANGES = {
    "projects": 10_000_000,
    "crawl_jobs": 20_000_000,
    "images": 30_000_000,
    "validation_jobs": 40_000_000,
    "export_jobs": 50_000_000,
    "crawl_chunks": 60_000_000,
    "validation_batches": 70_000_000,
    "activity_logs": 80_000_000,
}
RANGE_WIDTH = 10_000_000


def heavy_user() -> uuid.UUID:
    """Profile 1 of the load: it owns projects 1-10 and about a sixth of the rest."""
    return uuid.UUID(_md5_hex("profile1"))


def _md5_hex(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ load

FRACTION = "((hashint4({n} + {salt}) & 2147483647)::float8 / 2147483648.0)"
"""A deterministic pseudo-random number in [0, 1) per row: the same volume on every run."""


def skewed(n: str, salt: int, count: int, power: int, first: int) -> str:
    """An id in [first, first + count) where low ids are far more likely (x**power of a uniform x)."""
    return f"({first} + floor({count} * power({FRACTION.format(n=n, salt=salt)}, {power}))::int)"


def profile_uuid(index_sql: str) -> str:
    return f"md5('profile' || {index_sql})::uuid"


def load_sql() -> list[tuple[str, str]]:
    """One INSERT ... SELECT per table, at the current VOLUME."""
    project_owner = (
        f"CASE WHEN n <= 10 THEN 1 WHEN n = {VOLUME['projects']} THEN {VOLUME['profiles']}"
        f" ELSE {skewed('n', 1, VOLUME['profiles'], 4, 1)} END"
    )
    return [
        (
            "profiles",
            f"""INSERT INTO profiles (id, email, full_name, created_at, updated_at)
            SELECT {profile_uuid("n")}, 'user' || n || '@example.com', 'User ' || n,
                   now() - n * interval '1 hour', now()
            FROM generate_series(1, {VOLUME["profiles"]}) AS n""",
        ),
        (
            "projects",
            f"""INSERT INTO projects (name, description, user_id, status, created_at, updated_at)
            SELECT 'project ' || n, 'a project',
                   {profile_uuid(project_owner)},
                   CASE WHEN n % 10 = 0 THEN 'archived' ELSE 'active' END,
                   now() - n * interval '1 minute', now()
            FROM generate_series(1, {VOLUME["projects"]}) AS n ORDER BY n""",
        ),
        (
            "crawl_jobs",
            f"""INSERT INTO crawl_jobs (project_id, name, keywords, providers, max_images, status, progress,
                                        total_chunks, completed_chunks, queued_chunks, started_at, completed_at,
                                        created_at, updated_at)
            SELECT CASE WHEN m = 1 THEN 1 WHEN m = {VOLUME["crawl_jobs"]} THEN {VOLUME["projects"]}
                        ELSE {skewed("m", 7, VOLUME["projects"] - 1, 3, 2)} END,
                   'job ' || m, '["cat", "dog"]'::jsonb, '["openverse"]'::jsonb, 1000,
                   CASE m % 200 WHEN 0 THEN 'running' WHEN 1 THEN 'pending' WHEN 2 THEN 'failed'
                                WHEN 3 THEN 'cancelled' ELSE 'completed' END,
                   100, 3, 3, 3, now() - m * interval '5 minutes', now() - m * interval '4 minutes',
                   now() - m * interval '5 minutes',
                   -- in-flight jobs were touched just now, so the recording's sweep leaves them alone
                   CASE WHEN m % 200 IN (0, 1) THEN now() ELSE now() - m * interval '4 minutes' END
            FROM generate_series(1, {VOLUME["crawl_jobs"]}) AS m ORDER BY m""",
        ),
        (
            "crawl_chunks",
            """INSERT INTO crawl_chunks (crawl_job_id, chunk_index, keyword, provider, page, status, attempts, found,
                                          downloaded, created_at, updated_at)
            SELECT c.id, i, 'cat', 'openverse', i + 1,
                   CASE WHEN c.status = 'running' THEN (ARRAY['completed', 'running', 'pending'])[i + 1]
                        WHEN c.status = 'pending' THEN 'pending' ELSE 'completed' END,
                   1, 20, 20, c.created_at, c.updated_at
            FROM crawl_jobs AS c, generate_series(0, 2) AS i ORDER BY c.id, i""",
        ),
        (
            "images",
            f"""INSERT INTO images (crawl_job_id, original_url, filename, storage_url, width, height, file_size, format,
                                    sha256, phash, keyword, provider, source_url, title, license, license_url, creator,
                                    is_valid, created_at)
            SELECT j.job, 'https://img.example/' || j.n || '.jpg', j.n || '.jpg',
                   'projects/' || c.project_id || '/crawl-jobs/' || j.job || '/' || j.keyword || '/' || j.sha || '.jpg',
                   640, 480, 40000 + j.n % 20000, 'jpeg', j.sha, hashint8(j.n), j.keyword, 'openverse',
                   'https://example.org/page/' || j.n, 'image ' || j.n, 'cc-by', 'https://creativecommons.org/',
                   'someone', CASE WHEN j.n % 5 = 0 THEN NULL WHEN j.n % 17 = 0 THEN false ELSE true END,
                   c.created_at
            FROM (SELECT n, CASE WHEN n <= {BIG_JOB_IMAGES} THEN 1
                                 WHEN n > {VOLUME["images"] - TYPICAL_JOB_IMAGES} THEN {VOLUME["crawl_jobs"]}
                                 ELSE {skewed("n", 13, VOLUME["crawl_jobs"] - 1, 3, 2)} END AS job,
                         md5(n::text) || md5((n + 7)::text) AS sha,
                         (ARRAY['cat', 'dog', 'bird', 'fish', 'horse'])[1 + n % 5] AS keyword
                  FROM generate_series(1, {VOLUME["images"]}) AS n) AS j
            JOIN crawl_jobs AS c ON c.id = j.job
            ORDER BY j.job, j.n""",
        ),
        (
            "activity_logs",
            f"""INSERT INTO activity_logs (user_id, action, resource_type, resource_id, metadata, timestamp)
            SELECT CASE WHEN n % 100 = 0 THEN NULL ELSE {profile_uuid(skewed("n", 17, VOLUME["profiles"], 4, 1))} END,
                   (ARRAY['project.created', 'crawl_job.started', 'crawl_job.completed', 'export_job.completed'])
                       [1 + n % 4],
                   'crawl_job', n::text, '{{}}'::jsonb,
                   now() - ({VOLUME["activity_logs"]} - n) * interval '30 seconds'
            FROM generate_series(1, {VOLUME["activity_logs"]}) AS n ORDER BY n""",
        ),
        (
            "validation_jobs",
            f"""INSERT INTO validation_jobs (crawl_job_id, name, status, progress, total_images, validated_images,
                                             total_batches, completed_batches, created_at, updated_at)
            SELECT CASE WHEN k = 1 THEN 1 WHEN k = 2 THEN {VOLUME["crawl_jobs"]}
                        ELSE {skewed("k", 19, VOLUME["crawl_jobs"] - 1, 3, 2)} END,
                   'validation ' || k, CASE WHEN k % 100 = 0 THEN 'running' ELSE 'completed' END,
                   100, 1000, 1000, 5, 5, now() - k * interval '3 minutes', now() - k * interval '3 minutes'
            FROM generate_series(1, {VOLUME["validation_jobs"]}) AS k ORDER BY k""",
        ),
        (
            "validation_batches",
            f"""INSERT INTO validation_batches (validation_job_id, batch_index, first_image_id, last_image_id,
                                                image_count, status)
            SELECT 1, b, b * 200 + 1, (b + 1) * 200, 200, 'completed'
            FROM generate_series(0, {BIG_JOB_IMAGES // 200 - 1}) AS b
            UNION ALL
            SELECT v.id, b, b * 200 + 1, (b + 1) * 200, 200, 'completed'
            FROM validation_jobs AS v, generate_series(0, 4) AS b WHERE v.id > 1""",
        ),
        (
            "export_jobs",
            f"""INSERT INTO export_jobs (crawl_job_id, user_id, name, status, progress, format, total_images,
                                         exported_images, file_size, storage_key, completed_at, created_at, updated_at)
            SELECT e.job, p.user_id, 'export ' || e.k, CASE WHEN e.k % 100 = 0 THEN 'failed' ELSE 'completed' END,
                   100, 'zip', 20, 20, 1000000, 'exports/' || p.id || '/' || e.k || '/dataset.zip',
                   now() - e.k * interval '2 minutes', now() - e.k * interval '2 minutes', now()
            FROM (SELECT k, CASE WHEN k = 1 THEN 1 WHEN k = 2 THEN {VOLUME["crawl_jobs"]}
                                 ELSE {skewed("k", 23, VOLUME["crawl_jobs"] - 1, 3, 2)} END AS job
                  FROM generate_series(1, {VOLUME["export_jobs"]}) AS k) AS e
            JOIN crawl_jobs AS c ON c.id = e.job JOIN projects AS p ON p.id = c.project_id
            ORDER BY e.k""",
        ),
    ]


def load(connection: Any) -> dict[str, float]:
    """Each table in one INSERT ... SELECT; the seconds each took."""
    cursor = connection.cursor()
    cursor.execute("SET synchronous_commit = off")
    cursor.execute("SET work_mem = '256MB'")
    cursor.execute("SET maintenance_work_mem = '256MB'")
    took = {}
    for table, sql in load_sql():
        started = time.perf_counter()
        cursor.execute(sql)
        connection.commit()
        took[table] = time.perf_counter() - started
        print(f"  loaded {table:<18} {cursor.rowcount:>10,} rows in {took[table]:6.1f} s", flush=True)
    started = time.perf_counter()
    connection.autocommit = True
    cursor.execute("VACUUM ANALYZE")
    connection.autocommit = False
    took["VACUUM ANALYZE"] = time.perf_counter() - started
    print(f"  VACUUM ANALYZE in {took['VACUUM ANALYZE']:.1f} s", flush=True)
    return took


def move_sequences(connection: Any) -> None:
    cursor = connection.cursor()
    for table, start in ID_RANGES.items():
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {start})")
    connection.commit()


# ------------------------------------------------------------------------------------------------ record


@dataclass
class Statement:
    sql: str
    parameters: Sequence[Any]
    sources: set[str] = field(default_factory=set)


NUMBER_SEGMENT = re.compile(r"/\d+")
PLACEHOLDER_LIST = re.compile(r"%s(?:, %s)+")
VALUES_ROWS = re.compile(r"\((?:[^()]|\([^()]*\))*\)(?:, \((?:[^()]|\([^()]*\))*\))+")


def shape(sql: str) -> str:
    """A statement's identity: whitespace collapsed, and IN lists and multi-row VALUES of any length alike."""
    text = " ".join(sql.split())
    text = VALUES_ROWS.sub("(...), ...", text)
    return PLACEHOLDER_LIST.sub("%s, ...", text)


class Recorder:
    """Keeps the first occurrence of every distinct statement and which flows sent it.

    API statements run in the local gateway's request threads and are labelled with the route the driver is
    calling; worker statements run in the pollers' threads (`poller-<function>-<n>`) and carry the function.
    """

    def __init__(self) -> None:
        self.statements: dict[str, Statement] = {}
        self.label = "setup"
        self.active = False
        self._lock = threading.Lock()

    def __call__(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if not self.active:
            return
        thread = threading.current_thread().name
        source = thread.split("-")[1] if thread.startswith("poller-") else self.label
        if executemany:
            parameters = parameters[0]
        key = shape(statement)
        with self._lock:
            entry = self.statements.setdefault(key, Statement(statement, tuple(parameters or ())))
            entry.sources.add(source)


def drive(stack: Any, recorder: Recorder) -> None:
    """The demo dataset end to end, then every route the pipeline does not call, then the sweep."""
    from pixcrawler_local import demo
    from pixcrawler_local.client import ApiError, Client
    from pixcrawler_local.functions import Function
    from pixcrawler_local.httphost import HttpHost
    from pixcrawler_local.pipeline import Pipeline
    from pixcrawler_local.stack import scheduled_event

    class LabelledClient(Client):
        def request(self, method: str, path: str, body: Any = None) -> Any:
            route = NUMBER_SEGMENT.sub("/{id}", path.split("?")[0])
            recorder.label = f"API {method} {route}"
            return super().request(method, path, body)

    client = LabelledClient(stack.api_url, stack.token("bench@pixcrawler_local"))
    with HttpHost() as host, tempfile.TemporaryDirectory() as output:
        samples = demo.host_samples(host)
        recorder.active = True
        outcome = Pipeline(client, progress=False, timeout=300).run(demo.request(samples, Path(output) / "d.zip"))
        crawl_id, export_id = outcome.crawl["id"], outcome.export["id"]
        project_id = outcome.crawl["project_id"]
        calls: list[tuple[str, str, Any]] = [
            ("GET", "/v1/me", None),
            ("PATCH", "/v1/me", {"full_name": "Bench Mark"}),
            ("GET", "/v1/projects", None),
            ("GET", "/v1/projects?status=active&limit=5", None),
            ("GET", f"/v1/projects/{project_id}", None),
            ("PATCH", f"/v1/projects/{project_id}", {"description": "measured"}),
            ("GET", f"/v1/projects/{project_id}/crawl-jobs", None),
            ("GET", f"/v1/crawl-jobs/{crawl_id}/images?limit=5", None),
            ("GET", f"/v1/crawl-jobs/{crawl_id}/images?keyword=demo&validity=valid", None),
            ("GET", f"/v1/crawl-jobs/{crawl_id}/images?validity=unvalidated", None),
            ("GET", f"/v1/crawl-jobs/{crawl_id}/validation-jobs", None),
            ("GET", "/v1/export-jobs", None),
            ("POST", f"/v1/export-jobs/{export_id}/download-url", {}),
            ("GET", "/v1/activity?limit=5", None),
            ("POST", f"/v1/crawl-jobs/{crawl_id}/retry", {}),
        ]
        for method, path, body in calls:
            try:
                client.request(method, path, body)
            except ApiError as error:  # a refusal (e.g. retrying a finished job) still runs its queries
                print(f"  {method} {path}: {error.status}")
        page = client.get(f"/v1/crawl-jobs/{crawl_id}/images?limit=2")
        client.get(f"/v1/crawl-jobs/{crawl_id}/images?limit=2&cursor={page['next_cursor']}")
        first = client.get("/v1/activity?limit=2")
        client.get(f"/v1/activity?limit=2&cursor={first['next_cursor']}")
        image_id = page["items"][0]["id"]
        client.get(f"/v1/images/{image_id}")
        client.request("DELETE", f"/v1/images/{image_id}")
        second = client.post(
            f"/v1/projects/{project_id}/crawl-jobs",
            {"name": "cancelled", "keywords": ["demo"], "providers": ["urls"], "max_images": 5, "urls": samples.urls},
        )
        client.post(f"/v1/crawl-jobs/{second['id']}/cancel", {})
        client.wait(f"/v1/crawl-jobs/{second['id']}", timeout=120)
        recorder.label = "sweep"
        Function.from_repository(ROOT, "sweep").invoke(scheduled_event("sweep"))
        client.request("DELETE", f"/v1/projects/{project_id}")
        time.sleep(1)
        recorder.active = False


def record(database_url: str) -> dict[str, Statement]:
    from sqlalchemy import Engine, event

    from pixcrawler_local.stack import LocalStack, StackOptions

    recorder = Recorder()
    event.listen(Engine, "before_cursor_execute", recorder)
    data_dir = Path(tempfile.mkdtemp(prefix="pixcrawler-queries-stack-"))
    try:
        options = StackOptions(
            data_dir=data_dir,
            port=0,
            database_url=database_url,
            sweep_interval=0,
            allow_loopback=True,
        )
        with LocalStack(options) as stack:
            drive(stack, recorder)
    finally:
        event.remove(Engine, "before_cursor_execute", recorder)
        shutil.rmtree(data_dir, ignore_errors=True)
    return recorder.statements


# ------------------------------------------------------------------------------------------------ replay


@dataclass(frozen=True)
class Sample:
    """The rows a replayed statement's ids are mapped to: the heaviest user's, or a typical user's."""

    label: str
    user: uuid.UUID
    project: int
    crawl_job: int
    first_image: int
    image_count: int
    validation_job: int
    export_job: int
    first_chunk: int
    first_batch: int
    batch_count: int
    activity: int

    def id_for(self, table: str, offset: int) -> int:
        """The row standing in for the flow's `offset`-th id of `table` (spread the way the flow's were)."""
        return {
            "projects": self.project,
            "crawl_jobs": self.crawl_job,
            "images": self.first_image + min(offset * max(self.image_count // 25, 1), self.image_count - 1),
            "validation_jobs": self.validation_job,
            "export_jobs": self.export_job,
            "crawl_chunks": self.first_chunk + offset % 3,
            "validation_batches": self.first_batch + offset % self.batch_count,
            "activity_logs": self.activity,
        }[table]


def heavy_sample() -> Sample:
    """Profile 1 (a sixth of everything), its project 2 (the most crawl jobs) and crawl job 1 (100,000 images)."""
    return Sample(
        "heaviest",
        heavy_user(),
        project=2,
        crawl_job=1,
        first_image=1,
        image_count=BIG_JOB_IMAGES,
        validation_job=1,
        export_job=1,
        first_chunk=1,
        first_batch=1,
        batch_count=BIG_JOB_IMAGES // 200,
        activity=VOLUME["activity_logs"] // 2,
    )


def typical_sample(connection: Any) -> Sample:
    """The last profile (a handful of projects), its last project and that project's last crawl job with 40
    images, one validation and one export (validation and export job 2): what most requests look like,
    where the heaviest user shows the worst case."""
    cursor = connection.cursor()
    job = VOLUME["crawl_jobs"]
    cursor.execute("SELECT min(id), count(*) FROM images WHERE crawl_job_id = %s", (job,))
    first_image, images = cursor.fetchone()
    cursor.execute("SELECT min(id) FROM crawl_chunks WHERE crawl_job_id = %s", (job,))
    (first_chunk,) = cursor.fetchone()
    cursor.execute("SELECT min(id), count(*) FROM validation_batches WHERE validation_job_id = 2")
    first_batch, batches = cursor.fetchone()
    user = uuid.UUID(_md5_hex(f"profile{VOLUME['profiles']}"))
    cursor.execute("SELECT max(id) FROM activity_logs WHERE user_id = %s", (user,))
    (activity,) = cursor.fetchone()
    connection.rollback()
    return Sample(
        "typical",
        user,
        project=VOLUME["projects"],
        crawl_job=job,
        first_image=first_image,
        image_count=images,
        validation_job=2,
        export_job=2,
        first_chunk=first_chunk,
        first_batch=first_batch,
        batch_count=batches,
        activity=activity,
    )


def representative(value: Any, sample: Sample) -> Any:
    """A recorded parameter with the flow's own ids swapped for the sample's rows of the load."""
    if isinstance(value, uuid.UUID):
        return sample.user
    if isinstance(value, str) and value[:1] in "[{":  # a jsonb parameter, e.g. a chunk's image rows
        return json.dumps(_map_json(json.loads(value), sample))
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    for table, start in ID_RANGES.items():
        if start < value < start + RANGE_WIDTH:
            return sample.id_for(table, value - start - 1)
    return value


def _map_json(value: Any, sample: Sample) -> Any:
    if isinstance(value, list):
        return [_map_json(item, sample) for item in value]
    if isinstance(value, dict):
        return {key: _map_json(item, sample) for key, item in value.items()}
    return representative(value, sample)


@dataclass
class Measurement:
    access: list[str]
    rows: int
    median_ms: float
    seq_scan_on_large: bool
    error: str = ""


def _scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


def _access(plan: dict[str, Any]) -> list[str]:
    """`table: scan [index]` for every table the plan reads (a bitmap scan named by its index)."""
    bitmap_indexes = [node["Index Name"] for node in _scans(plan) if node["Node Type"] == "Bitmap Index Scan"]
    paths = []
    for node in _scans(plan):
        relation = node.get("Relation Name")
        if relation is None or node["Node Type"] == "ModifyTable":
            continue
        if node["Node Type"] == "Bitmap Heap Scan":
            paths.append(f"{relation}: Bitmap {'+'.join(bitmap_indexes)}")
            continue
        index = node.get("Index Name")
        paths.append(f"{relation}: {node['Node Type'].replace(' Scan', '')}" + (f" {index}" if index else ""))
    return sorted(set(paths))


def is_write(sql: str) -> bool:
    return sql.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE", "WITH"}


def measure(connection: Any, sql: str, parameters: Sequence[Any], runs: int) -> Measurement:
    """The plan, rows and median time of one statement inside the caller's transaction; a savepoint undoes
    every run, reads and writes alike."""
    cursor = connection.cursor()
    cursor.execute("SAVEPOINT run")
    try:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, parameters)
        raw = cursor.fetchone()[0]
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        cursor.execute("ROLLBACK TO SAVEPOINT run")
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            cursor.execute(sql, parameters)
            if cursor.description is not None:
                cursor.fetchall()
            times.append(time.perf_counter() - started)
            cursor.execute("ROLLBACK TO SAVEPOINT run")
            if times[0] > 0.5 and len(times) >= 3:
                break
    except Exception as error:
        cursor.execute("ROLLBACK TO SAVEPOINT run")
        return Measurement([], 0, 0.0, False, error=f"{type(error).__name__}: {str(error)[:160]}")
    access = _access(plan)
    seq = any(path.startswith(f"{table}: Seq") for path in access for table in LARGE_TABLES)
    return Measurement(access, int(plan.get("Actual Rows", 0)), statistics.median(times) * 1000, seq)


@dataclass
class Row:
    number: int
    statement: Statement
    base: dict[str, Measurement] = field(default_factory=dict)
    without: dict[str, dict[str, Measurement]] = field(default_factory=dict)

    @property
    def api_read(self) -> bool:
        return any(source.startswith("API GET") for source in self.statement.sources) and not is_write(
            self.statement.sql
        )


def tables_of(sql: str) -> set[str]:
    return {table for table in (*ID_RANGES, "profiles") if re.search(rf"\b{table}\b", sql)}


def measure_samples(
    connection: Any, statement: Statement, samples: Sequence[Sample], runs: int
) -> dict[str, Measurement]:
    return {
        sample.label: measure(
            connection, statement.sql, [representative(value, sample) for value in statement.parameters], runs
        )
        for sample in samples
    }


def replay(connection: Any, statements: dict[str, Statement], samples: Sequence[Sample], runs: int) -> list[Row]:
    rows = []
    ordered = sorted(statements.values(), key=lambda s: (sorted(s.sources)[0], s.sql))
    for number, statement in enumerate(ordered, 1):
        rows.append(Row(number, statement, measure_samples(connection, statement, samples, runs)))
        connection.rollback()
    return rows


def without_indexes(connection: Any, rows: list[Row], samples: Sequence[Sample], runs: int) -> None:
    """Each measured index dropped in turn (inside a transaction, rolled back): the statements on its table."""
    for index, table in MEASURED_INDEXES.items():
        affected = [row for row in rows if table in tables_of(row.statement.sql)]
        cursor = connection.cursor()
        cursor.execute(f"DROP INDEX {index}")
        for row in affected:
            row.without[index] = measure_samples(connection, row.statement, samples, runs)
        connection.rollback()
        print(f"  without {index}: {len(affected)} statements re-measured", flush=True)


@dataclass
class Deletion:
    images: int
    median_ms: float
    cascades: list[tuple[str, float, int]]


def project_deletion(connection: Any, runs: int = 3) -> Deletion:
    """`DELETE FROM projects WHERE id = 1` (one crawl job, 100,000 images), rolled back after each run."""
    cursor = connection.cursor()
    cursor.execute("SELECT count(*) FROM images WHERE crawl_job_id IN (SELECT id FROM crawl_jobs WHERE project_id = 1)")
    images = cursor.fetchone()[0]
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) DELETE FROM projects WHERE id = 1")
    raw = cursor.fetchone()[0]
    result = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    connection.rollback()
    cascades = sorted(
        (
            (trigger.get("Constraint Name", trigger["Trigger Name"]), trigger["Time"], trigger["Calls"])
            for trigger in result.get("Triggers", [])
        ),
        key=lambda item: -item[1],
    )
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        cursor.execute("DELETE FROM projects WHERE id = 1")
        times.append(time.perf_counter() - started)
        connection.rollback()
    return Deletion(images, statistics.median(times) * 1000, cascades)


# ------------------------------------------------------------------------------------------------ report


def _sources(sources: set[str], shown: int = 3) -> str:
    names = sorted(sources)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _cell(sql: str, limit: int = 110) -> str:
    text = " ".join(sql.split())
    return (text if len(text) <= limit else text[: limit - 1] + "…").replace("|", "\\|")


def _paths(measurements: dict[str, Measurement]) -> str:
    """The access path, with the typical sample's only where it differs from the heaviest's."""
    heaviest, typical = measurements["heaviest"], measurements["typical"]
    if heaviest.error:
        return f"not replayed: {heaviest.error}"
    text = "<br>".join(heaviest.access) or "—"
    if typical.access != heaviest.access:
        text += "<br>typical: " + ("<br>".join(typical.access) or typical.error or "—")
    return text


def _misses(row: Row) -> list[str]:
    misses = []
    for label, measurement in row.base.items():
        if measurement.seq_scan_on_large:
            misses.append(f"seq scan ({label})")
        if row.api_read and measurement.median_ms >= API_READ_GOAL_MS:
            misses.append(f"over {API_READ_GOAL_MS:g} ms ({label})")
    return misses


def _changed(row: Row, before: Measurement, after: Measurement) -> bool:
    """A plan that changed, a statement twice (and 1 ms) slower, or an insert: what the index costs writes."""
    slower = after.median_ms > max(2 * before.median_ms, before.median_ms + 1)
    inserts = row.statement.sql.lstrip().upper().startswith("INSERT")
    return after.access != before.access or slower or bool(after.error) or inserts


def report(rows: list[Row], samples: Sequence[Sample], deletion: Deletion, took: dict[str, float], runs: int) -> str:
    """The measured section, as Markdown (also what is printed)."""
    counts = ", ".join(f"{count:,} {table}" for table, count in VOLUME.items())
    typical = samples[1]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python benchmarks/queries.py --write` on "
        f"{platform.machine()} Linux, {os.cpu_count()} CPU cores shared with other work, embedded PostgreSQL "
        f"{_server_version}. Volume: {counts}, skewed: one user owns about a sixth of it, crawl job 1 holds "
        f"{BIG_JOB_IMAGES:,} images. Loading it with `INSERT ... SELECT generate_series` and `VACUUM ANALYZE` "
        f"took {sum(took.values()):.0f} s. {len(rows)} distinct statements were recorded while the product ran "
        f"(API routes, dispatch, crawl, sweep, validation, export); each is replayed with its ids mapped to the "
        f"**heaviest** user (profile 1, project 2 with the most crawl jobs, crawl job 1) and to a **typical** "
        f"one (crawl job {typical.crawl_job} with {typical.image_count} images), median of up to {runs} runs, "
        f"every run rolled back. The image list filtered by keyword asks for a keyword the job does not have.",
        "",
        f"Goals: no sequential scan on {', '.join(f'`{t}`' for t in LARGE_TABLES)}; every API read under "
        f"{API_READ_GOAL_MS:g} ms.",
        "",
        "| # | issued by | statement | access path | rows (heaviest / typical) | median ms (heaviest / typical) |",
        "| ---: | --- | --- | --- | ---: | ---: |",
    ]
    for row in rows:
        heaviest, typ = row.base["heaviest"], row.base["typical"]
        misses = _misses(row)
        flags = f" **{'; '.join(misses)}**" if misses else ""
        lines.append(
            f"| {row.number} | {_sources(row.statement.sources)} | `{_cell(row.statement.sql)}` | "
            f"{_paths(row.base)}{flags} | {heaviest.rows:,} / {typ.rows:,} | "
            f"{heaviest.median_ms:.2f} / {typ.median_ms:.2f} |"
        )
    lines += [
        "",
        "### Each index dropped",
        "",
        "Each index of the original brief, and each one added since, dropped in turn inside a transaction that is "
        "rolled back; the statements on its table whose plan changed or that became at least twice (and 1 ms) "
        "slower for either sample, and the inserts into its table (what the index costs each write).",
        "",
        "| index | # | with: access, ms (heaviest / typical) | without: access, ms (heaviest / typical) |",
        "| --- | ---: | --- | --- |",
    ]
    for index in MEASURED_INDEXES:
        changed = [
            row
            for row in rows
            if index in row.without
            and any(_changed(row, row.base[label], row.without[index][label]) for label in row.base)
        ]
        if not changed:
            lines.append(f"| `{index}` | — | no statement changed plan or time | |")
        for row in changed:
            before, after = row.base, row.without[index]
            lines.append(
                f"| `{index}` | {row.number} | {_paths(before)}, {before['heaviest'].median_ms:.2f} / "
                f"{before['typical'].median_ms:.2f} | {_paths(after)}, {after['heaviest'].median_ms:.2f} / "
                f"{after['typical'].median_ms:.2f} |"
            )
    lines += [
        "",
        "### Deleting a project",
        "",
        f"`DELETE FROM projects WHERE id = 1`, which cascades to {deletion.images:,} images (one crawl job): median "
        f"{deletion.median_ms:,.0f} ms over 3 runs, rolled back. Time in each cascade (foreign-key trigger):",
        "",
        "| foreign key (cascade) | ms | trigger calls |",
        "| --- | ---: | ---: |",
        *(f"| `{name}` | {ms:,.0f} | {calls:,} |" for name, ms, calls in deletion.cascades),
        "",
        f"Through the API the same delete then removes the objects: {deletion.images:,} image keys listed 1,000 "
        f"per page and deleted 1,000 per `DeleteObjects` request ({-(-deletion.images // 1000)} of each), inside "
        "the transaction (S3 time is not measured here: the local stand-in is not S3).",
    ]
    return "\n".join(lines) + "\n"


_server_version = "?"


def write_section(text: str) -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    import generate_schema

    generate_schema.write_measured(text)


def summary(rows: list[Row]) -> list[str]:
    misses = []
    for row in rows:
        misses += [f"#{row.number} {miss}: {_cell(row.statement.sql, 90)}" for miss in _misses(row)]
        misses += [f"#{row.number} not replayed: {m.error}" for m in row.base.values() if m.error]
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per statement (median reported)")
    parser.add_argument("--write", action="store_true", help="write the table into docs/DATABASE_SCHEMA.md")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the volume, for a quick trial run")
    args = parser.parse_args(argv)
    if args.scale != 1.0:
        global BIG_JOB_IMAGES
        for table in VOLUME:
            VOLUME[table] = max(10, int(VOLUME[table] * args.scale))
        BIG_JOB_IMAGES = max(1000, int(BIG_JOB_IMAGES * args.scale))

    global _server_version
    import pg8000.dbapi
    import pgserver

    from pixcrawler_local import database

    data_dir = Path(tempfile.mkdtemp(prefix="pixcrawler-queries-"))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        url = f"postgresql+pg8000://postgres@/postgres?unix_sock={data_dir}/.s.PGSQL.5432"
        print(f"database at revision {database.migrate(ROOT, url)}", flush=True)
        connection = pg8000.dbapi.connect(user="postgres", database="postgres", unix_sock=f"{data_dir}/.s.PGSQL.5432")
        cursor = connection.cursor()
        cursor.execute("SHOW server_version")
        _server_version = cursor.fetchone()[0].split()[0]
        print("loading volume", flush=True)
        took = load(connection)
        move_sequences(connection)
        print("recording the product's statements through the local stack", flush=True)
        statements = record(url)
        print(f"  {len(statements)} distinct statements", flush=True)
        cursor.execute("DELETE FROM profiles WHERE email = 'bench@pixcrawler_local'")
        cursor.execute(f"DELETE FROM activity_logs WHERE id > {ID_RANGES['activity_logs']}")
        connection.commit()
        connection.autocommit = True
        cursor.execute("ANALYZE")
        connection.autocommit = False
        samples = (heavy_sample(), typical_sample(connection))
        print("replaying at volume", flush=True)
        rows = replay(connection, statements, samples, args.runs)
        without_indexes(connection, rows, samples, max(3, args.runs // 3))
        deletion = project_deletion(connection)
        text = report(rows, samples, deletion, took, args.runs)
        print(text)
        misses = summary(rows)
        print("goals missed:" if misses else "every goal met", *misses, sep="\n  ")
        if args.write:
            write_section(text)
            print(f"wrote the measured section of {SCHEMA_DOC.relative_to(ROOT)}")
        connection.close()
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
