"""S3 and SQS on one machine, at one endpoint: objects in `s3disk.py` (files in the data dir), queues in moto's
server behind the write-through store of `store.py`. Every accepted object and message is on disk before the
client hears back. The bucket's queues are made as template.yaml declares them.

The stack runs the emulator in a process of its own (`aws_process`): answering S3 requests in the functions'
process took the GIL from the crawl that made them, two PUTs per image. It answers them from one event loop
(`loopserver.py`): about 0.8 ms of CPU a PUT and 0.5 ms a GET."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixcrawler_local import heap
from pixcrawler_local.ports import check_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from pixcrawler_local.s3disk import DiskS3
    from pixcrawler_local.store import DurableQueues

log = logging.getLogger(f"local-stack.{__name__.rpartition('.')[2]}")


@dataclass(frozen=True)
class WorkQueue:
    """A work queue and the event source that feeds its function, as template.yaml declares them."""

    name: str
    variable: str  # the environment variable the functions read its URL from
    function: str
    batch_size: int
    timeout_seconds: float  # the function's Timeout


WORK_QUEUES = (
    WorkQueue("dispatch", "DISPATCH_QUEUE_URL", "dispatch", batch_size=10, timeout_seconds=60),
    WorkQueue("crawl", "CRAWL_QUEUE_URL", "crawl", batch_size=4, timeout_seconds=300),
    WorkQueue("validation", "VALIDATION_QUEUE_URL", "validate", batch_size=1, timeout_seconds=300),
    WorkQueue("export", "EXPORT_QUEUE_URL", "export", batch_size=1, timeout_seconds=900),
)


OBJECTS_DIR, MESSAGES_DIR = "buckets", "sqs"  # under the data dir


@dataclass(frozen=True)
class Emulator:
    url: str
    objects: DiskS3
    queues: DurableQueues


def _is_sqs(environ: dict[str, Any]) -> bool:
    """boto3 speaks SQS's JSON protocol: `X-Amz-Target: AmazonSQS.*`. Everything else is S3."""
    return bool(environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS."))


@contextmanager
def aws_server(host: str, port: int, data_dir: Path, region: str) -> Iterator[Emulator]:
    """The emulator over `data_dir`, on one event loop (`loopserver.py`): S3 requests are answered by the S3 on
    disk in the loop, SQS requests by moto in the pool (a long poll waits up to 20 s). The caller runs
    `queues.restore()` once it has made the queues."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from pixcrawler_local import loopserver
    from pixcrawler_local.s3disk import DiskS3
    from pixcrawler_local.store import DurableQueues

    check_port(host, port, "S3/SQS emulator", "--aws-port")
    objects = DiskS3(data_dir / OBJECTS_DIR, region)
    queues = DurableQueues(DomainDispatcherApplication(create_backend_app), data_dir / MESSAGES_DIR, region)

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return (queues if _is_sqs(environ) else objects)(environ, start_response)

    with loopserver.serve(host, port, route, in_pool=_is_sqs, name="aws-emulator") as (bound_host, bound_port):
        yield Emulator(f"http://{bound_host}:{bound_port}", objects, queues)


class EmulatorProcess:
    """`aws_server` in its own interpreter, driven over its standard input and output."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.pid = child.pid
        self._child = child
        self._url = ""

    @property
    def url(self) -> str:
        """Where it listens; the first call waits until it does. It takes most of a second to import what it
        serves with, which the stack spends loading the functions meanwhile."""
        if not self._url:
            assert self._child.stdout is not None
            self._url = self._child.stdout.readline().strip()
            if not self._url:
                code = self._child.wait()
                raise RuntimeError(f"the S3/SQS emulator exited while starting (exit code {code}); see its log above")
        return self._url

    def restore(self) -> tuple[int, int]:
        """Once the queues exist: the stored objects' count, and the stored messages loaded back into them."""
        assert self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write("restore\n")
        self._child.stdin.flush()
        objects, messages = self._child.stdout.readline().split()
        return int(objects), int(messages)


@contextmanager
def aws_process(host: str, port: int, data_dir: Path, region: str) -> Iterator[EmulatorProcess]:
    """The emulator in a child interpreter that imports only what it serves with (a spawned `multiprocessing`
    child would import the whole CLI again: 118 MiB against about 60), started without waiting for it to
    listen (see `EmulatorProcess.url`). It ends with the block, and as soon as this process dies: its standard
    input closes and it exits at once, having nothing to save (it writes all it accepts before answering), so
    a `kill -9` of `serve` leaves no process holding the data dir or port."""
    level = str(logging.getLogger().getEffectiveLevel())
    command = [sys.executable, "-m", __name__, host, str(port), str(data_dir), region, level]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None
    try:
        yield EmulatorProcess(child)
    finally:
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _serve(host: str, port: str, data_dir: str, region: str, level: str) -> None:
    """The child's side: the URL once listening, then the counts for each `restore` line. At the end of its
    input, exit at once: everything accepted is on disk, and a clean stop would wait for long polls in flight."""
    logging.basicConfig(level=int(level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with heap.kept_trimmed(), aws_server(host, int(port), Path(data_dir), region) as running:
        print(running.url, flush=True)
        threading.Thread(target=_warm_queues, args=(running.url, region), name="warm-queues", daemon=True).start()
        for line in sys.stdin:
            if line.strip() == "restore":
                print(running.objects.object_count(), running.queues.restore(), flush=True)
        os._exit(0)


def _warm_queues(url: str, region: str) -> None:
    """moto builds its SQS backend at the first request to it (0.2 s here, mostly importing IAM's managed
    policies): one request now, while the stack still loads its functions, and the stack's first queue is made
    at once. A failure is left for that first queue to report."""
    import boto3  # moto's own dependency, already imported with it

    sqs = boto3.client(
        "sqs", endpoint_url=url, region_name=region, aws_access_key_id="local", aws_secret_access_key="local"
    )
    with contextlib.suppress(Exception):
        sqs.list_queues()


def create_queues(
    sqs: SQSClient, prefix: str, visibility_timeout: int, max_receive_count: int
) -> dict[str, dict[str, str]]:
    """Each work queue with its dead-letter queue and redrive policy, as the deployed template declares them."""
    created: dict[str, dict[str, str]] = {}
    for name in (queue.name for queue in WORK_QUEUES):
        dlq_url = sqs.create_queue(QueueName=f"{prefix}-{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        url = sqs.create_queue(
            QueueName=f"{prefix}-{name}",
            Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": redrive},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        created[name] = {"url": url, "arn": arn, "dlq_url": dlq_url}
    return created


def import_legacy_state(
    s3: S3Client, sqs: SQSClient, bucket: str, queues: dict[str, dict[str, str]], data_dir: Path
) -> int:
    """Move the objects and messages of an older data dir into the running emulator, which keeps them from then
    on, then delete the old files: the periodic copy of the bucket in `objects/` and the queues saved at
    shutdown in `queues.json` (before the write-through store), and the objects moto held with their bytes in
    `s3/` (before the S3 on disk). The number of objects and messages moved."""
    moved = 0
    index_path, mirror = data_dir / "objects" / "index.json", data_dir / "objects" / "objects"
    if index_path.is_file():
        for key, entry in json.loads(index_path.read_text()).items():
            digest = hashlib.sha256(key.encode()).hexdigest()
            if (path := mirror / digest[:2] / digest).is_file():
                with path.open("rb") as body:
                    s3.put_object(
                        Bucket=bucket,
                        Key=key,
                        Body=body,
                        ContentType=entry.get("content_type") or "binary/octet-stream",
                        Metadata=entry.get("metadata") or {},
                    )
                moved += 1
        shutil.rmtree(data_dir / "objects")
    if (snapshot := data_dir / "queues.json").is_file():
        for name, saved in json.loads(snapshot.read_text()).items():
            for kind, url_key in (("queue", "url"), ("dlq", "dlq_url")):
                for body in saved.get(kind, []):
                    sqs.send_message(QueueUrl=queues[name][url_key], MessageBody=body)
                    moved += 1
        snapshot.unlink()
    return moved + _import_moto_objects(s3, data_dir / "s3")


def _import_moto_objects(s3: S3Client, root: Path) -> int:
    """`s3/keys/*/*.json` name each object's key, metadata (moto's, headers included) and blob in `s3/blobs`."""
    moved = 0
    for manifest in root.glob("keys/*/*.json"):
        entry = json.loads(manifest.read_text())
        headers = {name.lower(): value for name, value in entry["metadata"].items()}
        if (blob := root / "blobs" / entry["blob"]).is_file():
            with blob.open("rb") as body:
                s3.put_object(
                    Bucket=entry["bucket"],
                    Key=entry["key"],
                    Body=body,
                    ContentType=headers.get("content-type", "binary/octet-stream"),
                    Metadata={
                        name.removeprefix("x-amz-meta-"): value
                        for name, value in headers.items()
                        if name.startswith("x-amz-meta-")
                    },
                )
            moved += 1
    shutil.rmtree(root, ignore_errors=True)
    return moved


if __name__ == "__main__":
    _serve(*sys.argv[1:])
