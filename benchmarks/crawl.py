"""Crawl throughput: our dispatch + crawl handlers against img2dataset, same URL list, same machine, same run.

    NO_ALBUMENTATIONS_UPDATE=1 python benchmarks/crawl.py [--images 2000] [--concurrency 16] [--batch-sizes 1,4]

Serves N generated JPEGs from a loopback `HttpHost` in its own process, runs a URL-list crawl job through the
real handlers in ONE process, as one Lambda environment would (SQS on a moto server process, an embedded
PostgreSQL unless DATABASE_URL is set), then downloads the same URLs with img2dataset (one process, the same
number of threads, `output_format=files`, and by default its own default resize, `border` to 256 px, so that
it decodes and re-encodes every image as our crawl decodes each (these 256 px JPEGs are their own thumbnails);
`--peer-resize no` for a peer that only writes the bytes), run from its own virtualenv, the one
`benchmarks/pipeline.py` creates on first use (~/.cache/pixcrawler-bench/img2dataset-venv, `pip install
img2dataset`; a benchmark-only tool, not a dependency).

Our crawl runs twice, with two S3 stand-ins in their own process: moto's server, which checks the result
(one object per image row: each is its own thumbnail) but takes only ~120 PUTs/s here, far below real S3; and a sink
that accepts PUTs as fast as it can and keeps only their keys, so the figure is the crawl's own rate, as
against real S3.
img2dataset's figure includes writing the files. Our crawl runs at each `--batch-sizes` (chunk messages per
invocation, overlapped: template.yaml's BatchSize, and 1 as the baseline of chunks one at a time) in every round.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "common"))
sys.path.insert(0, str(ROOT))

from benchmarks.pipeline import PEER_SCRIPT, ensure_peer  # noqa: E402  (img2dataset from its own venv)
from pixcrawler_local.emulator import WORK_QUEUES  # noqa: E402
from pixcrawler_local.stack import LOOPBACK_UNLIMITED  # noqa: E402

TEMPLATE_BATCH_SIZE = next(queue.batch_size for queue in WORK_QUEUES if queue.name == "crawl")


def database(workdir: str) -> tuple[str, Any]:
    if url := os.environ.get("DATABASE_URL"):
        return url, None
    import pgserver

    server = pgserver.get_server(workdir, cleanup_mode="stop")
    return f"postgresql+pg8000://postgres@/postgres?unix_sock={workdir}/.s.PGSQL.5432", server


def _host(count: int, ready: Any, stop: Any) -> None:
    from pixcrawler_local import samples
    from pixcrawler_local.httphost import HttpHost, Response

    with HttpHost() as host:
        for seed in range(count):
            host.routes[f"/img/{seed}.jpg"] = Response(samples.jpeg(seed), headers={"Content-Type": "image/jpeg"})
        ready.send(host.base_url)
        stop.wait()


def _moto(ready: Any, stop: Any) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request would bury the figures

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    ready.send(f"http://{host}:{port}")
    stop.wait()
    server.stop()


def _sink(ready: Any, stop: Any) -> None:
    """An S3 stand-in that answers every PUT at once and remembers only the keys; on stop, sends each bucket's
    object count, originals and thumbnails apart (`(bucket, is_thumbnail)`), and its own CPU per request.

    Real S3 spends none of this machine's CPU, so the stand-in should spend as little as it can: an asyncio
    protocol that reads the request line and `Content-Length` and skips the body costs a fraction of what
    `http.server` does (which parses every header block with the `email` package, on a thread per
    connection), and leaves the crawl the cores it would have on Lambda."""
    import asyncio

    keys: set[str] = set()
    requests = 0
    answered = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    listing = b"<ListBucketResult><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>"
    listed = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(listing), listing)

    class Sink(asyncio.Protocol):
        """HTTP/1.1 with keep-alive: PUTs (a bare `/bucket` creates the bucket) and bucket listings (the crawl
        lists a job's prefix when the job ends: empty, as nothing is kept)."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = bytearray()
            self.body_left = 0

        def data_received(self, data: bytes) -> None:
            nonlocal requests
            self.buffer += data
            while self.buffer:
                if self.body_left:
                    taken = min(self.body_left, len(self.buffer))
                    del self.buffer[:taken]
                    self.body_left -= taken
                    if self.body_left:
                        return
                    self.transport.write(answered)  # type: ignore[attr-defined]
                    continue
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].decode("latin-1").split("\r\n")
                del self.buffer[: end + 4]
                requests += 1
                method, path, _ = head[0].split(" ", 2)
                if method != "PUT":
                    self.transport.write(listed)  # type: ignore[attr-defined]
                    continue
                if path.count("/") > 1:
                    keys.add(path)
                self.body_left = next(
                    (
                        int(value)
                        for name, _, value in (line.partition(":") for line in head[1:])
                        if name.lower() == "content-length"
                    ),
                    0,
                )
                if not self.body_left:
                    self.transport.write(answered)  # type: ignore[attr-defined]

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Sink, "127.0.0.1", 0))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    started = time.process_time()
    ready.send(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    stop.wait()
    stored = collections.Counter((key.split("/")[1], ".thumb." in key) for key in keys)
    ready.send((stored, (time.process_time() - started) / max(requests, 1)))


def in_child(target: Any, *args: Any) -> tuple[Any, Any, Any]:
    """Run `target(*args, ready, stop)` in its own process; return what it sends when ready, its stop event,
    and the pipe for anything it sends later."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    stop = multiprocessing.Event()
    multiprocessing.Process(target=target, args=(*args, sender, stop), daemon=True).start()
    return receiver.recv(), stop, receiver


def serve(count: int) -> tuple[str, list[str], Any]:
    """The image host runs in its own process, so neither contender shares its interpreter with the server."""
    base_url, stop, _ = in_child(_host, count)
    return base_url, [f"{base_url}/img/{seed}.jpg" for seed in range(count)], stop


class OurRun(NamedTuple):
    wall: float
    """Dispatch to the last chunk, including this harness's SQS receives and deletes (Lambda's poller's work)."""
    handlers: float
    """The time spent inside our handlers (dispatch and every crawl invocation): our process's own work."""
    rows: int
    cpu: float
    """CPU seconds of this process, all threads, over `wall`."""
    bucket: str


def run_ours(urls: list[str], moto_endpoint: str, s3_endpoint: str, batch_size: int) -> OurRun:
    import uuid

    import boto3

    from pixcrawler import aws as pixcrawler_aws
    from pixcrawler.db import session_scope
    from pixcrawler.messages import DispatchMessage
    from pixcrawler.models import CrawlJob, JobStatus, Profile, Project
    from pixcrawler.settings import get_settings
    from pixcrawler_local.functions import load_module

    os.environ.update({"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ENDPOINT_URL_S3": s3_endpoint})
    os.environ["DATA_BUCKET"] = f"bench-{uuid.uuid4().hex[:12]}"
    pixcrawler_aws.reset()
    get_settings.cache_clear()
    sqs = boto3.client("sqs")
    boto3.client("s3").create_bucket(Bucket=os.environ["DATA_BUCKET"])
    for name in ("dispatch", "crawl"):
        os.environ[f"{name.upper()}_QUEUE_URL"] = sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")[
            "QueueUrl"
        ]
    get_settings.cache_clear()
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
    dispatch_app, crawl_app = (
        load_module(ROOT / "functions" / name / "app.py", name) for name in ("dispatch", "crawl")
    )
    context = _Context()
    in_handlers = 0.0

    def invoke(app: Any, records: list[dict[str, Any]]) -> None:
        nonlocal in_handlers
        entered = time.perf_counter()
        app.lambda_handler({"Records": records}, context)
        in_handlers += time.perf_counter() - entered

    started, cpu_started = time.perf_counter(), time.process_time()
    invoke(dispatch_app, [_record(DispatchMessage(crawl_job_id=job_id).model_dump_json(), "1")])
    queue = os.environ["CRAWL_QUEUE_URL"]
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=batch_size, AttributeNames=["All"]).get(
        "Messages", []
    ):
        invoke(crawl_app, [_record(m["Body"], m["Attributes"]["ApproximateReceiveCount"], m) for m in messages])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    with session_scope() as session:
        done = session.get_one(CrawlJob, job_id)
        assert done.status is JobStatus.COMPLETED, (done.status, done.error_message)
        return OurRun(elapsed, in_handlers, done.downloaded_images, cpu, os.environ["DATA_BUCKET"])


def count_objects(bucket: str) -> int:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(page.get("KeyCount", 0) for page in pages)


def _record(body: str, receive_count: str, message: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "messageId": (message or {}).get("MessageId", "m"),
        "receiptHandle": (message or {}).get("ReceiptHandle", "h"),
        "body": body,
        "attributes": {  # the fields the handlers' SQS record models require (Powertools' SqsAttributesModel)
            "SentTimestamp": "0",
            "SenderId": "bench",
            "ApproximateFirstReceiveTimestamp": "0",
            **(message or {}).get("Attributes", {}),
            "ApproximateReceiveCount": receive_count,
        },
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


def run_moto_puts(moto_endpoint: str, count: int, threads: int) -> tuple[float, int]:
    """moto's own S3 PUT ceiling on this machine: the same threads putting 10 KB objects, nothing else."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, config=Config(max_pool_connections=threads))
    s3.create_bucket(Bucket="bench-ceiling")
    body = os.urandom(10_000)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="bench-ceiling", Key=f"k{i}", Body=body), range(count)))
    return time.perf_counter() - started, count


def run_img2dataset(
    python: Path, urls: list[str], workdir: Path, threads: int, resize_mode: str
) -> tuple[float, int, float, float]:
    """Wall time (its process start-up and sharding included), its own shard download time, and the CPU
    seconds of the processes it runs (its interpreter's start-up and imports included), with img2dataset
    run by `python` (its own venv: installed beside aws-sam-cli it breaks sam's `click` pin)."""
    workdir.mkdir()
    url_list = workdir / "urls.txt"
    url_list.write_text("\n".join(urls))
    output = workdir / "i2d"
    children_started = _children_cpu()
    command = [str(python), "-c", PEER_SCRIPT, str(url_list), str(output), str(threads), str(len(urls)), resize_mode]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    elapsed, cpu = float(result.stdout.split()[-1]), _children_cpu() - children_started
    shard_seconds = sum(json.loads(stats.read_text())["duration"] for stats in output.glob("*_stats.json"))
    return elapsed, len(list(output.rglob("*.jpg"))), shard_seconds, cpu


def _children_cpu() -> float:
    """CPU seconds of ended child processes (img2dataset's worker; the servers run until the end)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


STARTUP_SAMPLE = 20


def _own(runs: list[OurRun]) -> float:
    return statistics.median(run.handlers for run in runs)


def _wall(runs: list[OurRun]) -> float:
    return statistics.median(run.wall for run in runs)


def _median(runs: list[OurRun]) -> OurRun:
    """The run with the median wall time."""
    return sorted(runs, key=lambda run: run.wall)[len(runs) // 2]


def configure(concurrency: int, urls_per_chunk: int, **extra: str) -> None:
    """The environment the crawl handlers run with here: fake credentials for the stand-ins, loopback allowed
    (the image host), Powertools quiet and its metrics named but not printed, as in the local stack."""
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "CRAWL_ALLOW_LOOPBACK": "1",
            "DOWNLOAD_CONCURRENCY": str(concurrency),
            "CRAWL_URLS_PER_CHUNK": str(urls_per_chunk),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_NAMESPACE": "PixCrawlerBench",
            "POWERTOOLS_METRICS_DISABLED": "true",
            **extra,
        }
    )


def migrated_database(workdir: str) -> Any:
    """`database(workdir)` migrated to head and made the handlers' (`DATABASE_URL`); its embedded server, if
    one was started (None with the caller's DATABASE_URL)."""
    from alembic import command
    from alembic.config import Config

    from pixcrawler.settings import get_settings

    url, server = database(workdir)
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--urls-per-chunk", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each contender; medians shown")
    parser.add_argument(
        "--batch-sizes",
        default=f"1,{TEMPLATE_BATCH_SIZE}",
        help="chunk messages per invocation our crawl runs at, each a contender (template.yaml's: the last)",
    )
    parser.add_argument(
        "--peer-resize",
        default="border",
        choices=("border", "no"),
        help="img2dataset's resize_mode: its default (border, 256 px: decode and re-encode) or none",
    )
    args = parser.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    configure(args.concurrency, args.urls_per_chunk, CRAWL_HOST_OVERRIDES=LOOPBACK_UNLIMITED)
    workdir = tempfile.mkdtemp(prefix="pixcrawler-bench-")
    server = None
    try:
        server = migrated_database(workdir)
        base_url, urls, stop = serve(args.images)
        print(f"{args.images} JPEGs served from {base_url}; concurrency {args.concurrency} in one process")
        moto_endpoint, moto_stop, _ = in_child(_moto)
        sink_endpoint, sink_stop, sink_report = in_child(_sink)
        sizes = [int(size) for size in args.batch_sizes.split(",")]
        ours: dict[int, list[OurRun]] = {size: [] for size in sizes}
        theirs: list[tuple[float, int, float, float]] = []
        peer = ensure_peer()
        if peer is None:
            sys.exit("img2dataset is the peer of this benchmark: without it there is nothing to compare")
        start_up = run_img2dataset(
            peer, urls[:STARTUP_SAMPLE], Path(workdir) / "i2d-start-up", args.concurrency, args.peer_resize
        )[3]
        for round_number in range(args.rounds):
            for size in sizes:
                ours[size].append(run_ours(urls, moto_endpoint, sink_endpoint, size))
            workdir_round = Path(workdir) / f"i2d-{round_number}"
            theirs.append(run_img2dataset(peer, urls, workdir_round, args.concurrency, args.peer_resize))
            wall, _, shard, _ = theirs[-1]
            print(
                f"round {round_number + 1}: "
                + "; ".join(
                    f"pixcrawler batch {size} {runs[-1].rows / runs[-1].handlers:.0f} (handlers), "
                    f"{runs[-1].rows / runs[-1].wall:.0f} (wall clock)"
                    for size, runs in ours.items()
                )
                + f"; img2dataset {len(urls) / shard:.0f} (shard), {len(urls) / wall:.0f} (wall clock) images/s"
            )
        sink_stop.set()
        stored, sink_cpu = sink_report.recv()
        # Every served JPEG is a small 256 px one: its own thumbnail, so one object per row and no preview.
        every_run = [run for runs in ours.values() for run in runs]
        assert all((stored[run.bucket, False], stored[run.bucket, True]) == (run.rows, 0) for run in every_run)
        on_moto = run_ours(urls, moto_endpoint, moto_endpoint, sizes[-1])
        assert count_objects(on_moto.bucket) == on_moto.rows, "one object per image row"
        puts_seconds, puts = run_moto_puts(moto_endpoint, min(len(urls), 500), args.concurrency)
        moto_stop.set()
        fetch_seconds, fetched = run_downloader(urls, args.concurrency)
        median = statistics.median
        theirs_own, theirs_wall = median(t[2] for t in theirs), median(t[0] for t in theirs)
        rows = []
        for size, runs in ours.items():
            rows.append((f"pixcrawler  batch {size}, in its handlers, S3 sink + PG", runs[0].rows, _own(runs)))
            rows.append((f"pixcrawler  batch {size}, wall clock (harness's SQS too)", runs[0].rows, _wall(runs)))
        rows += [
            ("img2dataset its shard's own duration", len(urls), theirs_own),
            ("img2dataset wall clock (start-up included)", len(urls), theirs_wall),
            (f"pixcrawler  batch {sizes[-1]}, wall clock, S3 on moto + PG", on_moto.rows, on_moto.wall),
            ("  diagnostic: our downloader alone", fetched, fetch_seconds),
            ("  diagnostic: moto server S3 PUTs alone", puts, puts_seconds),
        ]
        print(f"median of {args.rounds} alternating rounds, but for the last three lines:")
        for label, count, seconds in rows:
            print(f"{label:56}: {count} images, {seconds:6.2f} s, {count / seconds:5.0f} images/s")
        assert all(run[1] == len(urls) for run in theirs), "img2dataset must fetch every image"
        their_cpu = (median(run[3] for run in theirs) - start_up) / (len(urls) - STARTUP_SAMPLE)
        for size, runs in ours.items():
            sink, rows_ratio = _median(runs), runs[0].rows / len(urls)
            print(
                f"batch {size}: ratio pixcrawler/img2dataset {rows_ratio * theirs_own / _own(runs):.2f} (own work: "
                f"handlers vs shard), {rows_ratio * theirs_wall / _wall(runs):.2f} (wall clock); CPU per image "
                f"{sink.cpu / sink.rows * 1000:.2f} ms in its one process"
            )
        print(
            f"CPU per image: img2dataset {their_cpu * 1000:.2f} ms in its worker process (its start-up, measured on "
            f"{STARTUP_SAMPLE} URLs, taken off); the S3 sink {sink_cpu * 1000:.3f} ms per request in its own process"
        )
        stop.set()
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
