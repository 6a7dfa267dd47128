"""Validation throughput and the near-duplicate pass, each against a baseline measured in the same run.

    python benchmarks/validate.py [--images 200] [--facts 100000] [--hashes 100000] [--subset 4000]

Figures are CPU seconds of this one process (`time.process_time`), i.e. per core, so other load on the
machine does not skew them; wall-clock seconds are printed alongside. The run with facts is the validation
worker's batches end to end against an embedded PostgreSQL (loading, judging and writing every row): its
rate is wall clock, PostgreSQL's own work included, next to the per-core rate of the decode it replaces.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from pixcrawler.schemas.validation import ValidationRules
from pixcrawler.validation import neardup, rules
from pixcrawler.validation.hashing import dhash
from pixcrawler_local import samples

MAX_PIXELS = 50_000_000
ROOT = Path(__file__).resolve().parents[1]


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


def throughput(count: int) -> dict[str, float]:
    """The decode path (what validation does for an image without facts) against a full decode; returns
    the decode path's rate per size."""
    print("per-image validation of photo-like JPEGs (default rules plus reject_blank)")
    decode_rates = {}
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
        decode_rates[f"{size}px"] = rates["validator (draft decode)"]
    return decode_rates


def with_facts(count: int, decode_rates: dict[str, float]) -> None:
    """Validate `count` images whose facts the crawl took, through the worker's own batches: not one S3 read."""
    from moto import mock_aws
    from sqlalchemy import select, text

    from pixcrawler import aws, db
    from pixcrawler.settings import get_settings
    from pixcrawler.validation import ingest, worker
    from pixcrawler_local import database

    print(f"\nvalidation of {count:,} images with facts (worker batches, embedded PostgreSQL, rules as above)")
    with tempfile.TemporaryDirectory(prefix="pixcrawler-validate-") as directory, mock_aws():
        server, url = database.start_embedded(Path(directory))
        try:
            database.migrate(ROOT, url)
            os.environ.update(DATABASE_URL=url, DB_POOL_SIZE="3", AWS_DEFAULT_REGION="us-east-1")
            os.environ["VALIDATION_QUEUE_URL"] = aws.sqs().create_queue(QueueName="validation")["QueueUrl"]
            get_settings.cache_clear()
            db.reset()
            job_rules = ValidationRules(reject_blank=True, near_duplicates="allow")
            rules_json = job_rules.model_dump_json()
            with db.get_engine().begin() as connection:
                job_id = connection.execute(text(_FACT_ROWS), {"count": count, "rules": rules_json}).scalar_one()
                facts = connection.execute(select(*ingest.FACT_COLUMNS)).all()
            crawl_job_id = connection_scalar(
                db, text, "SELECT crawl_job_id FROM validation_jobs WHERE id = :id", job_id
            )
            for workers in (1, 2):
                if workers > 1:
                    job_id = connection_scalar(db, text, _ANOTHER_JOB, crawl_job_id, rules_json)
                worker.plan(job_id)
                batches = connection_scalar(
                    db, text, "SELECT total_batches FROM validation_jobs WHERE id = :id", job_id
                )
                spent: list[float] = []
                with timed(spent), ThreadPoolExecutor(workers) as pool:
                    list(pool.map(partial(worker.run_batch, job_id), range(batches)))
                done = "SELECT status = 'completed' AND invalid_images > 0 FROM validation_jobs WHERE id = :id"
                assert connection_scalar(db, text, done, job_id), "the job must complete with its planted failures"
                rate = count / spent[1]
                print(
                    f"  {workers} worker{'s' if workers > 1 else ''}, {batches} batches: {rate:8,.0f} images/s wall "
                    f"({spent[1]:.2f}s; CPU here {spent[0]:.2f}s, PostgreSQL on the same cores)  goal >= 20,000"
                )
            started = time.process_time()
            for row in facts:
                rules.judge(ingest.facts_of(*row), job_rules, 115_000)
            judged = len(facts) / (time.process_time() - started)
            print(f"  judging alone (rules.judge on {len(facts):,} facts)  {judged:8,.0f} images/s per core")
            for size, decode_rate in decode_rates.items():
                ratio = judged / decode_rate
                print(f"  decode path at {size}: {decode_rate:6,.0f} images/s per core: judging is {ratio:,.0f}x")
        finally:
            db.reset()
            server.cleanup()


def connection_scalar(db: Any, text: Any, statement: str, *values: object) -> Any:
    names = ("id", "rules")
    with db.get_engine().begin() as connection:
        return connection.execute(text(statement), dict(zip(names, values, strict=False))).scalar_one()


_JOB_COLUMN = "SELECT {} FROM validation_jobs WHERE id = :id"
_ANOTHER_JOB = """
INSERT INTO validation_jobs (crawl_job_id, name, validation_rules) VALUES (:id, 'again', CAST(:rules AS jsonb))
RETURNING id
"""

# One user, project and crawl job with `count` images carrying facts like the crawl's (1% blank, 1% undecodable,
# 1% below the minimum width), and a validation job over them.
_FACT_ROWS = """
WITH profile AS (
    INSERT INTO profiles (id, email) VALUES (gen_random_uuid(), 'bench@example.com') RETURNING id
), project AS (
    INSERT INTO projects (user_id, name) SELECT id, 'bench' FROM profile RETURNING id
), crawl AS (
    INSERT INTO crawl_jobs (project_id, name, keywords, providers, max_images, status)
    SELECT id, 'bench', '["cat"]', '["urls"]', :count, 'completed' FROM project RETURNING id
), stored AS (
    INSERT INTO images (crawl_job_id, original_url, filename, storage_url, width, height, file_size, format,
                        sha256, phash, decodable, decode_error, mode, blank_variance)
    SELECT crawl.id, 'https://example.com/' || n, n || '.jpg', 'k/' || n || '.jpg',
           CASE WHEN mod(n, 100) = 1 THEN 0 ELSE 1024 END, 768, 115000, 'jpeg', md5(n::text) || md5(n::text),
           (random() * 9.2e18)::bigint, mod(n, 100) <> 2,
           CASE WHEN mod(n, 100) = 2 THEN '{"code": "undecodable", "message": "does not decode"}'::jsonb END,
           'RGB', CASE WHEN mod(n, 100) = 3 THEN 1.5 ELSE 900 + mod(n, 50) END
    FROM crawl, generate_series(1, :count) AS n
    RETURNING 1
)
INSERT INTO validation_jobs (crawl_job_id, name, validation_rules)
SELECT id, 'bench', CAST(:rules AS jsonb) FROM crawl WHERE (SELECT count(*) FROM stored) > 0
RETURNING id
"""


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
    ranked = neardup.Ranked()
    for image_id, value in enumerate(hashes):
        ranked.append(image_id, value)
    print(f"\nnear-duplicate pass, {count:,} hashes ({count // 100:,} planted copies), threshold {threshold}")
    spent: list[float] = []
    with timed(spent):
        removed = sum(1 for _ in neardup.near_duplicates(ranked, threshold))
    print(f"  multi-index hashing, whole pass     {spent[0]:8.2f} s  (wall {spent[1]:.2f}s), {removed:,} removed")

    sample = hashes[:subset]
    pairwise: list[float] = []
    with timed(pairwise):
        expected = neardup.pairwise_duplicates(sample, threshold)
    index = neardup.MultiIndex(sample, threshold)
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
            removed = sum(1 for _ in neardup.near_duplicates(ranked, looser))
        label = f"multi-index at threshold {looser}"
        print(f"  {label:<35} {spent[0]:8.2f} s  (wall {spent[1]:.2f}s), {removed:,} removed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--facts", type=int, default=100_000, help="images with facts to validate (0: skip)")
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=4_000)
    parser.add_argument("--thresholds", default="5,8", help="further thresholds to time the pass at, comma-separated")
    arguments = parser.parse_args()
    decode_rates = throughput(arguments.images)
    if arguments.facts:
        with_facts(arguments.facts, decode_rates)
    extra = [int(value) for value in arguments.thresholds.split(",") if value]
    near_duplicates(arguments.hashes, arguments.subset, extra)


if __name__ == "__main__":
    main()
