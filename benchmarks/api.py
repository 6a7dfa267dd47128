"""API function latency against a real embedded PostgreSQL: cold start and warm p50/p95.

    python benchmarks/api.py [--requests 200] [--cold-runs 5]

Cold start = a fresh interpreter importing `functions/api/app.py` plus its first request (engine, first
connection, first route compile). With SnapStart, the same interpreter then runs the before-snapshot and
after-restore hooks as Lambda's runtime does (tests/snapstart.py) before its first request; what Lambda's own
restore costs cannot be measured here. The first read of the database secret is timed through boto3 (moto's
server as Secrets Manager), through the Parameters and Secrets extension (a loopback stand-in), and through
boto3 after a restore. Warm figures are per request through `lambda_handler`. The deep image page
(10,000 images, cursor near the end) is compared in the same run with the first page (keyset should cost the
same) and with the OFFSET query a page-number design would run (the peer keyset replaces).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common")]

IMAGES = 10_000
PROJECTS = 50

COLD = """
import sys, time, json
start = time.perf_counter()
sys.path[:0] = [{root!r}, {root!r} + "/layers/common", {root!r} + "/functions/api"]
import app
from tests import events
imported = time.perf_counter()
reply = app.lambda_handler(events.http_event("GET", "/v1/projects", user={user!r}), events.lambda_context("api"))
done = time.perf_counter()
assert reply["statusCode"] == 200, reply
import aws_lambda_powertools.event_handler.openapi.models
docs = time.perf_counter() - done
print(json.dumps({{"import": imported - start, "first_request": done - imported, "docs_models": docs}}))
"""

SNAPSTART = """
import sys, time, json
start = time.perf_counter()
sys.path[:0] = [{root!r}, {root!r} + "/layers/common", {root!r} + "/functions/api"]
import app
from tests import events, snapstart
imported = time.perf_counter()
snapstart.take_snapshot()
snapshot = time.perf_counter()
snapstart.restore()
restored = time.perf_counter()
reply = app.lambda_handler(events.http_event("GET", "/v1/projects", user={user!r}), events.lambda_context("api"))
done = time.perf_counter()
assert reply["statusCode"] == 200, reply
print(json.dumps({{"init": imported - start, "before_snapshot": snapshot - imported,
                  "after_restore": restored - snapshot, "first_request": done - restored}}))
"""


def seed(user: uuid.UUID) -> int:
    """One user with PROJECTS projects and a crawl job holding IMAGES images, inserted in one statement
    (a multi-row VALUES insert of 10,000 rows would exceed the protocol's 65,535 bind parameters)."""
    from sqlalchemy import text

    from pixcrawler import db
    from pixcrawler.models import CrawlJob, JobStatus, Profile, Project

    with db.session_scope() as session:
        session.add(Profile(id=user, email="bench@example.com"))
        projects = [Project(user_id=user, name=f"project {n}") for n in range(PROJECTS)]
        session.add_all(projects)
        session.flush()
        job = CrawlJob(
            project_id=projects[0].id, name="bench", keywords=["cat"], max_images=IMAGES, status=JobStatus.COMPLETED
        )
        session.add(job)
        session.flush()
        prefix = f"projects/{projects[0].id}/crawl-jobs/{job.id}/cat/"
        started = time.perf_counter()
        session.execute(
            text(
                "INSERT INTO images (crawl_job_id, original_url, filename, storage_url, sha256, width, height,"
                " file_size, format, keyword, license)"
                " SELECT :job, 'https://img.example/' || n || '.jpg', n || '.jpg',"
                " :prefix || lpad(to_hex(n), 64, '0') || '.jpg', lpad(to_hex(n), 64, '0'), 640, 480, 50000,"
                " 'jpeg', 'cat', 'cc-by' FROM generate_series(1, :count) AS n"
            ),
            {"job": job.id, "prefix": prefix, "count": IMAGES},
        )
        print(f"seeded {IMAGES:,} images in one INSERT ... SELECT: {time.perf_counter() - started:.2f} s")
        return job.id


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000
    return f"p50 {p50:7.2f} ms   p95 {p95:7.2f} ms"


def timed(call: Callable[[], Any], count: int) -> list[float]:
    call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()

    import pgserver

    data_dir = tempfile.mkdtemp(prefix="pixcrawler-bench-")
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        os.environ["DATABASE_URL"] = f"postgresql+pg8000://postgres@/postgres?unix_sock={data_dir}/.s.PGSQL.5432"
        from alembic import command
        from alembic.config import Config

        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        user = uuid.uuid4()
        job_id = seed(user)
        run(user, job_id, args.requests, args.cold_runs)
        secret_reads(args.cold_runs)
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


SECRET = """
import sys, time, json
sys.path[:0] = [{root!r}, {root!r} + "/layers/common"]
from pixcrawler import aws
if {snapstart!r}:
    from tests import snapstart
    snapstart.take_snapshot()
    snapstart.restore()
start = time.perf_counter()
aws.secret_string({arn!r})
print(json.dumps({{"read": time.perf_counter() - start}}))
"""


def secret_reads(runs: int) -> None:
    """The deployed functions' first read of the database secret, in fresh interpreters: through boto3 (moto's
    server stands in for Secrets Manager), through the extension (a loopback stand-in), and through boto3 after
    a SnapStart restore (boto3 and its models loaded before the snapshot)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.secrets_extension import serving

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would bury the figures
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    aws_env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    client = boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    arn = client.create_secret(Name="bench-db", SecretString='{"username": "app"}')["ARN"]
    base = {**os.environ, **aws_env, "AWS_ENDPOINT_URL": endpoint, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    base.pop("DATABASE_URL", None)
    try:
        with serving("bench-token") as extension:
            extension.secrets[arn] = '{"username": "app"}'
            cases = {
                "boto3 (import, client, call)": (base, False),
                "Parameters and Secrets extension": (
                    {
                        **base,
                        "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port),
                        "AWS_SESSION_TOKEN": "bench-token",
                    },
                    False,
                ),
                "boto3 after a SnapStart restore": (base, True),
            }
            print(f"\nfirst read of the database secret, over {runs} fresh interpreters (median):")
            for name, (env, snapstart) in cases.items():
                reads = []
                for _ in range(runs):
                    script = SECRET.format(root=str(ROOT), arn=arn, snapstart=snapstart)
                    output = subprocess.run(
                        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
                    ).stdout
                    reads.append(json.loads(output.strip().splitlines()[-1])["read"])
                print(f"  {name:36} {statistics.median(reads) * 1000:7.1f} ms")
    finally:
        moto.stop()


def fresh_interpreters(script: str, user: uuid.UUID, runs: int) -> list[dict[str, float]]:
    """Run `script` in `runs` fresh interpreters; each prints its phases' seconds as its last line."""
    results = []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", script.format(root=str(ROOT), user=str(user))],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"},
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    return results


def median_ms(results: list[dict[str, float]], phase: str) -> float:
    return statistics.median(result[phase] for result in results) * 1000


def run(user: uuid.UUID, job_id: int, requests: int, cold_runs: int) -> None:
    from sqlalchemy import select

    from pixcrawler import db
    from pixcrawler.api import pagination
    from pixcrawler.models import Image

    colds = fresh_interpreters(COLD, user, cold_runs)
    imports = [cold["import"] for cold in colds]
    firsts = [cold["first_request"] for cold in colds]
    print(f"\ncold start over {cold_runs} fresh interpreters (median):")
    print(f"  import functions/api/app.py   {statistics.median(imports) * 1000:7.1f} ms")
    print(f"  first GET /v1/projects        {statistics.median(firsts) * 1000:7.1f} ms")
    totals = [sum(pair) for pair in zip(imports, firsts, strict=True)]
    print(f"  total                         {statistics.median(totals) * 1000:7.1f} ms")
    docs = statistics.median(cold["docs_models"] for cold in colds) * 1000
    print(f"  kept off that path: OpenAPI models for /v1/docs, imported on first docs request: {docs:.1f} ms")

    snaps = fresh_interpreters(SNAPSTART, user, cold_runs)
    print(f"\nwith SnapStart, over {cold_runs} fresh interpreters (median; hooks run as the runtime runs them):")
    print(f"  init (import), once per version   {median_ms(snaps, 'init'):7.1f} ms")
    print(f"  before-snapshot hooks, once       {median_ms(snaps, 'before_snapshot'):7.1f} ms")
    print(f"  after-restore hooks               {median_ms(snaps, 'after_restore'):7.1f} ms")
    print(f"  first GET /v1/projects            {median_ms(snaps, 'first_request'):7.1f} ms")
    print("  restored start = Lambda's restore (not measurable here) + the last two lines")

    sys.path.insert(0, str(ROOT / "functions" / "api"))
    import app  # type: ignore[import-not-found]

    from tests import events

    context = events.lambda_context("api")

    def get(path: str, query: dict[str, str] | None = None) -> Callable[[], Any]:
        event = events.http_event("GET", path, user=user, query=query)

        def call() -> Any:
            reply = app.lambda_handler(event, context)
            assert reply["statusCode"] == 200, reply
            return reply

        return call

    with db.get_engine().connect() as connection:
        last_ids = sorted(connection.execute(select(Image.id).where(Image.crawl_job_id == job_id)).scalars())
    deep_cursor = pagination.encode(last_ids[-101])
    images = f"/v1/crawl-jobs/{job_id}/images"
    print(f"\nwarm, {requests} requests each through lambda_handler:")
    cases = {
        "GET /v1/projects (20 of 50)": get("/v1/projects"),
        "GET images, first page of 100": get(images, {"limit": "100"}),
        "GET images, deep page (last 100 of 10,000)": get(images, {"limit": "100", "cursor": deep_cursor}),
    }
    for name, call in cases.items():
        print(f"  {name:46} {percentiles(timed(call, requests))}")

    with db.get_engine().connect() as connection:
        keyset = select(Image).where(Image.crawl_job_id == job_id, Image.id > last_ids[-101]).order_by(Image.id)
        offset = select(Image).where(Image.crawl_job_id == job_id).order_by(Image.id).offset(IMAGES - 100)

        def query(statement: Any) -> Callable[[], Any]:
            return lambda: connection.execute(statement.limit(101)).all()

        print("\nthe same deep page as bare SQL (peer: OFFSET pagination):")
        print(f"  {'keyset  (id > cursor)':46} {percentiles(timed(query(keyset), requests))}")
        print(f"  {'offset  (OFFSET 9,900)':46} {percentiles(timed(query(offset), requests))}")


if __name__ == "__main__":
    main()
