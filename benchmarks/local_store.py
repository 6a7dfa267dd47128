"""The local stack's S3 stand-in, before and after the write-through store: PUT rate and the emulator's memory.

Each variant runs in its own process (as in `pixcrawler serve`): moto's plain `ThreadedMotoServer` (objects in
memory, the old stand-in) and `emulator.moto_server` (objects written through to a data dir). The parent PUTs
N photo-sized objects with boto3 from 8 threads, then reads the server's resident set from /proc.

    python benchmarks/local_store.py [--objects 2000] [--size 115000] [--variants memory disk]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

SERVE = """
import sys, time
from pathlib import Path
variant, root = sys.argv[1], Path(sys.argv[2])
if variant == "memory":
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print("http://%s:%d" % server.get_host_and_port(), flush=True)
    time.sleep(3600)
from pixcrawler_local.emulator import moto_server
with moto_server("127.0.0.1", 0, root, "us-east-1") as (url, store):
    print(url, flush=True)
    time.sleep(3600)
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(variant: str, objects: int, size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pixcrawler-store-") as root:
        server = subprocess.Popen([sys.executable, "-c", SERVE, variant, root], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            s3 = boto3.client(
                "s3", endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="local", aws_secret_access_key="local",
            )  # fmt: skip
            s3.create_bucket(Bucket="bench")
            s3.put_object(Bucket="bench", Key="warm", Body=b"x")
            before = rss_mib(server.pid)
            body = os.urandom(size)
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                keys = [f"images/{n}.jpg" for n in range(objects)]
                list(pool.map(lambda key: s3.put_object(Bucket="bench", Key=key, Body=body), keys))
            elapsed = time.perf_counter() - started
            return {"puts_per_s": objects / elapsed, "rss_before": before, "rss_after": rss_mib(server.pid)}
        finally:
            server.kill()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--size", type=int, default=115_000)
    parser.add_argument("--variants", nargs="+", choices=("memory", "disk"), default=["memory", "disk"])
    args = parser.parse_args()
    print(f"{args.objects} objects x {args.size // 1000} KB, 8 threads")
    for variant in args.variants:
        figures = measure(variant, args.objects, args.size)
        print(
            f"{variant:>6}: {figures['puts_per_s']:6.0f} PUT/s, emulator RSS {figures['rss_before']:6.1f} -> "
            f"{figures['rss_after']:6.1f} MiB"
        )


if __name__ == "__main__":
    main()
