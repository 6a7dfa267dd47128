"""What the local stand-ins for AWS cost, each measured against a peer in the same run.

    python benchmarks/local_stack.py [--requests 300] [--messages 400]

- Start-up and shutdown of `LocalStack` on a fresh data dir (its database copied from the migrated template)
  and again on the same one (restart).
- Gateway: GET /v1/health over HTTP through the local API Gateway (event building, JWT check, response
  shaping, Werkzeug) against the same request as an event handed straight to the API handler.
- Event source mapping: messages through a `Poller` (receive, Lambda event, invoke, delete successes) against
  a plain receive + delete loop on the same queue, both with a handler that does nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "common")]

from benchmarks.api import percentiles, timed  # noqa: E402  (the same latency figures as the API's benchmark)
from pixcrawler import aws  # noqa: E402
from pixcrawler_local.emulator import create_queues  # noqa: E402
from pixcrawler_local.gateway import to_event  # noqa: E402
from pixcrawler_local.pollers import EventSource, Poller  # noqa: E402
from pixcrawler_local.stack import LocalStack, StackOptions  # noqa: E402


def gateway(stack: LocalStack, requests: int) -> None:
    from werkzeug.test import EnvironBuilder

    url = f"{stack.api_url}/v1/health"
    api = stack.api_function

    def over_http() -> None:
        with urllib.request.urlopen(url) as response:
            response.read()

    def direct() -> None:
        api.invoke(to_event(EnvironBuilder(path="/v1/health").get_request(), None))

    http, plain = timed(over_http, requests), timed(direct, requests)
    print(f"GET /v1/health  via local gateway   {percentiles(http)}")
    print(f"                handler called      {percentiles(plain)}")
    print(f"                gateway overhead    {(statistics.median(http) - statistics.median(plain)) * 1000:.2f} ms")


def event_source(messages: int) -> None:
    sqs = aws.sqs()
    queues = create_queues(sqs, f"bench{int(time.time())}", visibility_timeout=30, max_receive_count=5)
    queue = queues["crawl"]

    def fill() -> None:
        for start in range(0, messages, 10):
            entries = [{"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(start, start + 10)]
            sqs.send_message_batch(QueueUrl=queue["url"], Entries=entries)  # type: ignore[arg-type]

    def plain_loop() -> None:
        while batch := sqs.receive_message(QueueUrl=queue["url"], MaxNumberOfMessages=10).get("Messages"):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
            sqs.delete_message_batch(QueueUrl=queue["url"], Entries=entries)  # type: ignore[arg-type]

    def through_poller() -> None:
        poller = Poller(sqs, EventSource(queue["url"], queue["arn"], lambda event: None, wait_seconds=0), "noop")
        while poller.poll_once():
            pass

    for label, drain in (("receive + delete only", plain_loop), ("local event source mapping", through_poller)):
        fill()
        started = time.perf_counter()
        drain()
        elapsed = time.perf_counter() - started
        print(f"{messages} messages  {label:<28} {messages / elapsed:8.0f} msg/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server would log every request
    data_dir = Path(tempfile.mkdtemp(prefix="pixcrawler-bench-"))
    try:
        for label in ("fresh data dir", "restart"):
            started = time.perf_counter()
            with LocalStack(StackOptions(data_dir=data_dir, port=0, sweep_interval=0)) as stack:
                ready = time.perf_counter()
                if label == "restart":
                    gateway(stack, args.requests)
                    event_source(args.messages)
                stopping = time.perf_counter()
            print(f"start-up ({label}) {ready - started:5.1f} s   shutdown {time.perf_counter() - stopping:4.1f} s")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
