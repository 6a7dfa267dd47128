"""The local stack's S3 stand-in against moto's server: request rates and the emulator's memory.

Each variant runs in its own process (as in `pixcrawler serve`): moto's plain `ThreadedMotoServer` (objects in
memory, the stand-in before `s3disk.py`) and `emulator.aws_server` (S3 on disk, SQS in moto). The parent PUTs N
photo-sized objects with boto3 from 8 threads, GETs them back, then uploads one large object in 8 MiB multipart
parts and downloads it, as an export and its download do; it reads the server's resident set from /proc after
the small objects and its peak (VmHWM) after the large one, and its CPU time per request (boto3 in the parent
costs a few ms of its own per request, which caps the rates both variants can show).

    python benchmarks/local_store.py [--objects 2000] [--size 115000] [--large-mib 256] [--variants memory disk]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig

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
from pixcrawler_local.emulator import aws_server
with aws_server("127.0.0.1", 0, root, "us-east-1") as emulator:
    print(emulator.url, flush=True)
    time.sleep(3600)
"""


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def cpu_seconds(pid: int) -> float:
    """User plus system time the process has used (utime and stime of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(variant: str, objects: int, size: int, large_mib: int) -> dict[str, float]:
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
            before, cpu_before = rss_mib(server.pid), cpu_seconds(server.pid)
            body = os.urandom(size)
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                keys = [f"images/{n}.jpg" for n in range(objects)]
                list(pool.map(lambda key: s3.put_object(Bucket="bench", Key=key, Body=body), keys))
                put_elapsed = time.perf_counter() - started
                after, cpu_puts = rss_mib(server.pid), cpu_seconds(server.pid)
                started = time.perf_counter()
                list(pool.map(lambda key: s3.get_object(Bucket="bench", Key=key)["Body"].read(), keys))
                get_elapsed = time.perf_counter() - started
                cpu_gets = cpu_seconds(server.pid)
            config = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=4)
            large = large_mib << 20
            s3.upload_fileobj(io.BytesIO(os.urandom(1 << 20) * large_mib), "bench", "export.tar", Config=config)
            received = 0
            for block in s3.get_object(Bucket="bench", Key="export.tar")["Body"].iter_chunks(1 << 20):
                received += len(block)
            assert received == large
            return {
                "puts_per_s": objects / put_elapsed,
                "gets_per_s": objects / get_elapsed,
                "put_cpu_ms": (cpu_puts - cpu_before) * 1000 / objects,
                "get_cpu_ms": (cpu_gets - cpu_puts) * 1000 / objects,
                "rss_before": before,
                "rss_after": after,
                "peak_after_large": rss_mib(server.pid, "VmHWM"),
            }
        finally:
            server.kill()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--size", type=int, default=115_000)
    parser.add_argument("--large-mib", type=int, default=256, help="the large object, uploaded in 8 MiB parts")
    parser.add_argument("--variants", nargs="+", choices=("memory", "disk"), default=["memory", "disk"])
    args = parser.parse_args()
    print(f"{args.objects} objects x {args.size // 1000} KB, 8 threads; then one {args.large_mib} MiB object")
    for variant in args.variants:
        figures = measure(variant, args.objects, args.size, args.large_mib)
        print(
            f"{variant:>6}: {figures['puts_per_s']:6.0f} PUT/s, {figures['gets_per_s']:6.0f} GET/s; emulator CPU "
            f"{figures['put_cpu_ms']:.2f} ms a PUT, {figures['get_cpu_ms']:.2f} ms a GET; RSS "
            f"{figures['rss_before']:6.1f} -> {figures['rss_after']:6.1f} MiB, "
            f"peak after the large object {figures['peak_after_large']:6.1f} MiB"
        )


if __name__ == "__main__":
    main()
