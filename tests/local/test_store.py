"""The emulator (S3 on disk, moto's SQS behind the write-through store), in its own process as under `pixcrawler
serve`: what it accepted is there after a SIGKILL and a restart on the same directory, and its memory does not
grow with the bytes it stores, nor with the number of objects."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig

from pixcrawler_local.emulator import create_queues, import_legacy_state
from pixcrawler_local.s3disk import KeyIndex, Listed

BUCKET = "pixcrawler-local"
EMULATOR = """
import json, sys, time
from pathlib import Path
import boto3
from pixcrawler_local.emulator import create_queues, aws_server
with aws_server("127.0.0.1", 0, Path(sys.argv[1]), "us-east-1") as emulator:
    url = emulator.url
    client = lambda service: boto3.client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="l", aws_secret_access_key="l"
    )
    client("s3").create_bucket(Bucket="pixcrawler-local")
    queues = create_queues(client("sqs"), "t", visibility_timeout=60, max_receive_count=2)
    restored = [emulator.objects.object_count(), emulator.queues.restore()]
    print(json.dumps({"url": url, "queues": queues, "restored": restored}), flush=True)
    time.sleep(3600)
"""


@contextmanager
def emulator(root: Path) -> Iterator[dict[str, Any]]:
    """The emulator over `root`; killed with SIGKILL at the end, as a crash would."""
    process = subprocess.Popen([sys.executable, "-c", EMULATOR, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        started: dict[str, Any] = json.loads(process.stdout.readline())
        for service in ("s3", "sqs"):
            started[service] = boto3.client(
                service, endpoint_url=started["url"], region_name="us-east-1",
                aws_access_key_id="l", aws_secret_access_key="l",
            )  # fmt: skip
        started["pid"] = process.pid
        yield started
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def test_what_was_accepted_survives_sigkill(tmp_path: Path) -> None:
    big = bytes(range(256)) * (12 * 4096 + 17)  # 12.6 MB: a multipart upload of three parts
    with emulator(tmp_path) as aws:
        s3, sqs, crawl = aws["s3"], aws["sqs"], aws["queues"]["crawl"]
        s3.put_object(Bucket=BUCKET, Key="a b/é+100%.jpg", Body=b"jpeg", ContentType="image/jpeg", Metadata={"n": "1"})
        s3.put_object(Bucket=BUCKET, Key="rewritten", Body=b"first")
        s3.put_object(Bucket=BUCKET, Key="rewritten", Body=b"second")
        s3.put_object(Bucket=BUCKET, Key="gone/1", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key="gone/2", Body=b"y")
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "gone/1"}, {"Key": "gone/2"}]})
        config = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
        s3.upload_fileobj(io.BytesIO(big), BUCKET, "exports/big.tar", Config=config)

        for body in ("in flight", "waiting", "poison"):
            sqs.send_message(QueueUrl=crawl["url"], MessageBody=body)
        first = sqs.receive_message(QueueUrl=crawl["url"], MaxNumberOfMessages=1)["Messages"][0]
        assert first["Body"] == "in flight"  # received, not deleted: in flight for 60 s when the process dies
        sqs.send_message(QueueUrl=aws["queues"]["dispatch"]["dlq_url"], MessageBody="dead")

    with emulator(tmp_path) as aws:
        s3, sqs, crawl = aws["s3"], aws["sqs"], aws["queues"]["crawl"]
        assert aws["restored"] == [3, 4]
        image = s3.get_object(Bucket=BUCKET, Key="a b/é+100%.jpg")
        assert image["Body"].read() == b"jpeg" and image["ContentType"] == "image/jpeg"
        assert image["Metadata"] == {"n": "1"}
        assert s3.get_object(Bucket=BUCKET, Key="rewritten")["Body"].read() == b"second"
        assert s3.get_object(Bucket=BUCKET, Key="exports/big.tar")["Body"].read() == big
        listed = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert sorted(listed) == ["a b/é+100%.jpg", "exports/big.tar", "rewritten"]
        assert len(list((tmp_path / "buckets" / BUCKET).glob("*/*"))) == 3  # replaced and deleted bytes are gone

        received = sqs.receive_message(
            QueueUrl=crawl["url"], MaxNumberOfMessages=10, MessageSystemAttributeNames=["ApproximateReceiveCount"]
        )["Messages"]  # at once: the message in flight at the kill does not wait out its visibility timeout
        counts = {message["Body"]: message["Attributes"]["ApproximateReceiveCount"] for message in received}
        assert counts == {"in flight": "2", "waiting": "1", "poison": "1"}
        assert {m["MessageId"] for m in received if m["Body"] == "in flight"} == {first["MessageId"]}
        in_flight = next(message for message in received if message["Body"] == "in flight")
        sqs.delete_message(QueueUrl=crawl["url"], ReceiptHandle=in_flight["ReceiptHandle"])
        others = [message for message in received if message is not in_flight]
        for _ in range(2):  # received twice (the queue's maxReceiveCount): the next receive redrives them
            for message in others:
                handle = message["ReceiptHandle"]
                sqs.change_message_visibility(QueueUrl=crawl["url"], ReceiptHandle=handle, VisibilityTimeout=0)
            others = sqs.receive_message(QueueUrl=crawl["url"], MaxNumberOfMessages=10).get("Messages", [])
        assert others == []
        dead = sqs.receive_message(QueueUrl=crawl["dlq_url"], MaxNumberOfMessages=10)["Messages"]
        assert sorted(m["Body"] for m in dead) == ["poison", "waiting"]

    with emulator(tmp_path) as aws:
        assert aws["restored"] == [3, 3]  # the deleted message stays deleted; the redriven two stay in the DLQ
        sqs, queues = aws["sqs"], aws["queues"]
        depth = sqs.get_queue_attributes(QueueUrl=queues["crawl"]["dlq_url"], AttributeNames=["All"])["Attributes"]
        assert int(depth["ApproximateNumberOfMessages"]) == 2


def test_memory_does_not_grow_with_the_bytes_stored(tmp_path: Path) -> None:
    """64 MiB stored; the emulator's resident set grows by a small fraction of that (moto alone: by all of it)."""
    body = bytes(range(256)) * 1024  # 256 KiB
    with emulator(tmp_path) as aws:
        aws["s3"].put_object(Bucket=BUCKET, Key="warm-up", Body=body)
        before = rss_kib(aws["pid"])
        for n in range(256):
            aws["s3"].put_object(Bucket=BUCKET, Key=f"images/{n}.jpg", Body=body)
        grown = rss_kib(aws["pid"]) - before
    assert grown < 16 * 1024, f"grew {grown} KiB for 64 MiB stored"


def test_the_key_index_does_not_grow_with_the_objects() -> None:
    """100,000 keys as long as the crawl's, with what a listing shows of each: a set of the keys alone in memory
    held 280 bytes each (27 MiB); the index holds a fixed page cache and leaves the rest in its file."""
    index = KeyIndex()
    stamp = "2026-12-07T01:02:03.456789+00:00"
    index.add("bucket", [Listed("warm-up", 1, "0" * 32, stamp, "crc32")])
    before = rss_kib(os.getpid())
    keys = (f"projects/1/crawl-jobs/1/photos/{n:064x}.jpg" for n in range(100_000))
    index.add("bucket", (Listed(key, 115_000, f"{n:032x}", stamp, "crc32") for n, key in enumerate(keys)))
    grown = rss_kib(os.getpid()) - before
    assert index.count() == 100_001 and grown < 5 * 1024, f"grew {grown} KiB for 100,000 keys"


def test_a_data_dir_from_before_the_store_is_moved_into_it(aws: dict[str, Any], tmp_path: Path) -> None:
    """The old periodic copy of the bucket and the queues saved at shutdown: nothing they held is lost."""
    key = "projects/1/é.jpg"
    digest = hashlib.sha256(key.encode()).hexdigest()
    (tmp_path / "objects" / "objects" / digest[:2]).mkdir(parents=True)
    (tmp_path / "objects" / "objects" / digest[:2] / digest).write_bytes(b"jpeg")
    index = {key: {"etag": '"x"', "content_type": "image/jpeg", "metadata": {"n": "1"}}}
    (tmp_path / "objects" / "index.json").write_text(json.dumps(index))
    (tmp_path / "queues.json").write_text(json.dumps({"crawl": {"queue": ["a", "b"], "dlq": ["dead"]}}))
    queues = create_queues(aws["sqs"], "old", visibility_timeout=60, max_receive_count=5)

    assert import_legacy_state(aws["s3"], aws["sqs"], aws["bucket"], queues, tmp_path) == 4
    stored = aws["s3"].get_object(Bucket=aws["bucket"], Key=key)
    assert stored["Body"].read() == b"jpeg" and stored["ContentType"] == "image/jpeg"
    assert stored["Metadata"] == {"n": "1"}
    waiting = aws["sqs"].receive_message(QueueUrl=queues["crawl"]["url"], MaxNumberOfMessages=10)["Messages"]
    dead = aws["sqs"].receive_message(QueueUrl=queues["crawl"]["dlq_url"], MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in waiting) == ["a", "b"] and [m["Body"] for m in dead] == ["dead"]
    assert list(tmp_path.iterdir()) == []


def test_objects_moto_held_on_disk_move_into_the_s3_on_disk(tmp_path: Path) -> None:
    """A data dir from the write-through moto store (`s3/keys`, `s3/blobs`): every object, its content type and
    metadata are served by the S3 on disk after the next start, and the old files are gone."""
    key = "projects/1/é +%.jpg"
    (tmp_path / "s3" / "blobs" / "ab").mkdir(parents=True)
    (tmp_path / "s3" / "blobs" / "ab" / "abcd").write_bytes(b"jpeg")
    (tmp_path / "s3" / "keys" / "00").mkdir(parents=True)
    manifest = {
        "bucket": BUCKET,
        "key": key,
        "blob": "ab/abcd",
        "etag": "x",
        "size": 4,
        "last_modified": "2026-12-01T00:00:00+00:00",
        "metadata": {"content-type": "image/jpeg", "x-amz-meta-n": "1", "x-amz-content-sha256": "UNSIGNED"},
    }
    (tmp_path / "s3" / "keys" / "00" / "0001.json").write_text(json.dumps(manifest))
    with emulator(tmp_path) as aws:
        queues = aws["queues"]
        assert import_legacy_state(aws["s3"], aws["sqs"], BUCKET, queues, tmp_path) == 1
        assert not (tmp_path / "s3").exists()
    with emulator(tmp_path) as aws:
        assert aws["restored"] == [1, 0]
        stored = aws["s3"].get_object(Bucket=BUCKET, Key=key)
        assert stored["Body"].read() == b"jpeg" and stored["ContentType"] == "image/jpeg"
        assert stored["Metadata"] == {"n": "1"}
