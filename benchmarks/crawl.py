"""Crawl throughput: our dispatch + crawl handlers against img2dataset, same URL list, same machine, same run.

    NO_ALBUMENTATIONS_UPDATE=1 python benchmarks/crawl.py [--images 2000] [--concurrency 16]

Serves N generated JPEGs from a loopback `HttpHost`, runs a URL-list crawl job through the real handlers
(moto in-process for S3/SQS, an embedded PostgreSQL unless DATABASE_URL is set) in ONE process, as one
Lambda environment would, then downloads the same URLs with img2dataset (one process, the same number of
threads, `output_format=files`, `resize_mode=no`). Our figure includes the S3 upload and the Postgres rows;
img2dataset's includes writing files. Needs `pip install img2dataset` (a benchmark-only tool, not a dependency).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "common"))
sys.path.insert(0, str(ROOT))


def database(workdir: str) -> tuple[str, Any]:
    if url := os.environ.get("DATABASE_URL"):
        return url, None
    import pgserver

    server = pgserver.get_server(workdir, cleanup_mode="stop")
    return f"postgresql+pg8000://postgres@/postgres?unix_sock={workdir}/.s.PGSQL.5432", server


def _host(count: int, ready: Any, stop: Any) -> None:
    from pixcrawler.local import samples
    from pixcrawler.local.httphost import HttpHost, Response

    with HttpHost() as host:
        for seed in range(count):
            host.routes[f"/img/{seed}.jpg"] = Response(samples.jpeg(seed), headers={"Content-Type": "image/jpeg"})
        ready.send(host.base_url)
        stop.wait()


def _moto(ready: Any, stop: Any) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    ready.send(f"http://{host}:{port}")
    stop.wait()
    server.stop()


def in_child(target: Any, *args: Any) -> tuple[Any, Any]:
    """Run `target(*args, ready, stop)` in its own process; return what it sends when ready, and its stop event."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    multiprocessing.Process(target=target, args=(*args, sender, stop), daemon=True).start()
    return receiver.recv(), stop


def serve(count: int) -> tuple[str, list[str], Any]:
    """The image host runs in its own process, so neither contender shares its interpreter with the server."""
    base_url, stop = in_child(_host, count)
    return base_url, [f"{base_url}/img/{seed}.jpg" for seed in range(count)], stop


def run_ours(urls: list[str], moto_endpoint: str | None) -> tuple[float, int]:
    """With `moto_endpoint`, S3 and SQS are a moto server in another process (as real S3 is elsewhere);
    without, moto runs in this process and its request parsing competes with the crawl for the GIL."""
    import boto3
    from moto import mock_aws

    from pixcrawler import aws as pixcrawler_aws
    from pixcrawler.db import session_scope
    from pixcrawler.messages import DispatchMessage
    from pixcrawler.models import CrawlJob, JobStatus, Profile, Project
    from pixcrawler.settings import get_settings

    if moto_endpoint:
        os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
    with contextlib.nullcontext() if moto_endpoint else mock_aws():
        pixcrawler_aws.reset()
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket="bench-data")
        os.environ["DATA_BUCKET"] = "bench-data"
        for name in ("dispatch", "crawl"):
            os.environ[f"{name.upper()}_QUEUE_URL"] = sqs.create_queue(QueueName=name)["QueueUrl"]
        get_settings.cache_clear()
        import uuid

        with session_scope() as session:
            owner = Profile(id=uuid.uuid4(), email=f"bench-{uuid.uuid4().hex[:8]}@example.com")
            job = CrawlJob(
                project=Project(user=owner, name="bench"),
                name="bench",
                keywords=["bench"],
                providers=["urls"],
                urls=urls,
                max_images=len(urls),
            )
            session.add(job)
            session.flush()
            job_id = job.id
        from pixcrawler.local.functions import load_module

        dispatch_app, crawl_app = (
            load_module(ROOT / "functions" / name / "app.py", name) for name in ("dispatch", "crawl")
        )
        context = _Context()
        started = time.perf_counter()
        record = _record(DispatchMessage(crawl_job_id=job_id).model_dump_json(), "1")
        dispatch_app.lambda_handler({"Records": [record]}, context)
        queue = os.environ["CRAWL_QUEUE_URL"]
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, AttributeNames=["All"]).get(
                "Messages", []
            )
            if not messages:
                break
            records = [_record(m["Body"], m["Attributes"]["ApproximateReceiveCount"], m) for m in messages]
            crawl_app.lambda_handler({"Records": records}, context)
            for message in messages:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        elapsed = time.perf_counter() - started
        with session_scope() as session:
            done = session.get_one(CrawlJob, job_id)
            assert done.status is JobStatus.COMPLETED, (done.status, done.error_message)
            stored = done.downloaded_images
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket="bench-data")
        objects = sum(page.get("KeyCount", 0) for page in pages)
        assert objects == stored, (objects, stored)
    return elapsed, stored


def _record(body: str, receive_count: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "messageId": (message or {}).get("MessageId", "m"),
        "receiptHandle": (message or {}).get("ReceiptHandle", "h"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive_count},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


class _Context:
    function_name, function_version, memory_limit_in_mb = "bench", "$LATEST", 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id, log_group_name, log_stream_name = "r", "g", "s"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def run_downloader(urls: list[str], threads: int) -> tuple[float, int]:
    """Our downloader alone (SSRF checks, streaming limit, type/magic/header checks, sha256), no storage."""
    from pixcrawler.crawl.download import Downloader
    from pixcrawler.settings import get_settings

    get_settings.cache_clear()
    downloader = Downloader(get_settings())
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        fetched = list(pool.map(downloader.fetch, urls))
    elapsed = time.perf_counter() - started
    downloader.close()
    return elapsed, len(fetched)


def run_moto_puts(moto_endpoint: str | None, count: int, threads: int) -> tuple[float, int]:
    """moto's own S3 PUT ceiling on this machine: the same threads putting 10 KB objects, nothing else."""
    import boto3
    from botocore.config import Config
    from moto import mock_aws

    with contextlib.nullcontext() if moto_endpoint else mock_aws():
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, config=Config(max_pool_connections=threads))
        s3.create_bucket(Bucket="bench-ceiling")
        body = os.urandom(10_000)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: s3.put_object(Bucket="bench-ceiling", Key=f"k{i}", Body=body), range(count)))
        return time.perf_counter() - started, count


def run_img2dataset(urls: list[str], workdir: str, threads: int) -> tuple[float, int, float]:
    """Wall time (its process start-up and sharding included) and its own shard download time."""
    from img2dataset import download

    url_list = Path(workdir) / "urls.txt"
    url_list.write_text("\n".join(urls))
    output = Path(workdir) / "i2d"
    started = time.perf_counter()
    download(
        url_list=str(url_list),
        input_format="txt",
        output_folder=str(output),
        output_format="files",
        resize_mode="no",
        processes_count=1,
        thread_count=threads,
        timeout=10,
        retries=0,
        number_sample_per_shard=len(urls),
        disallowed_header_directives=[],
    )
    elapsed = time.perf_counter() - started
    shard_seconds = sum(json.loads(stats.read_text())["duration"] for stats in output.glob("*_stats.json"))
    return elapsed, len(list(output.rglob("*.jpg"))), shard_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--urls-per-chunk", type=int, default=100)
    parser.add_argument(
        "--moto", choices=("server", "in-process"), default="server", help="where moto's S3/SQS run (default: server)"
    )
    args = parser.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "CRAWL_ALLOW_LOOPBACK": "1",
            "DOWNLOAD_CONCURRENCY": str(args.concurrency),
            "CRAWL_URLS_PER_CHUNK": str(args.urls_per_chunk),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    workdir = tempfile.mkdtemp(prefix="pixcrawler-bench-")
    server = None
    try:
        url, server = database(workdir)
        os.environ["DATABASE_URL"] = url
        from alembic import command
        from alembic.config import Config

        from pixcrawler.settings import get_settings

        get_settings.cache_clear()
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        base_url, urls, stop = serve(args.images)
        print(f"{args.images} JPEGs served from {base_url}; concurrency {args.concurrency} in one process")
        moto_endpoint, moto_stop = in_child(_moto) if args.moto == "server" else (None, None)
        ours_seconds, ours_count = run_ours(urls, moto_endpoint)
        puts_seconds, puts = run_moto_puts(moto_endpoint, min(len(urls), 500), args.concurrency)
        if moto_stop:
            moto_stop.set()
        fetch_seconds, fetched = run_downloader(urls, args.concurrency)
        theirs_seconds, theirs_count, shard_seconds = run_img2dataset(urls, workdir, args.concurrency)
        rows = [
            (f"pixcrawler  crawl, S3 (moto {args.moto}) + PG", ours_count, ours_seconds),
            ("img2dataset wall clock (start-up included)", theirs_count, theirs_seconds),
            ("img2dataset its shard's own duration", theirs_count, shard_seconds),
            ("  diagnostic: our downloader alone", fetched, fetch_seconds),
            (f"  diagnostic: moto {args.moto} S3 PUTs alone", puts, puts_seconds),
        ]
        for label, count, seconds in rows:
            print(f"{label:44}: {count} images, {seconds:6.2f} s, {count / seconds:5.0f} images/s")
        ours, theirs, theirs_shard = (count / seconds for _, count, seconds in rows[:3])
        print(f"ratio pixcrawler/img2dataset: {ours / theirs:.2f} (wall clock), {ours / theirs_shard:.2f} (shard time)")
        stop.set()
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
