"""Long exports continue across invocations; redelivery, duplicates, failures and cancellation stay clean."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from pixcrawler.exports import multipart
from pixcrawler.messages import ExportMessage
from pixcrawler.models import ExportJob, Image, JobStatus
from pixcrawler.settings import get_settings
from tests import factories
from tests.events import lambda_context, sqs_event, sqs_record
from tests.export.archive import members
from tests.export.conftest import deliver, drain, export_job, fetch, reload

pytestmark = pytest.mark.usefixtures("env")

SHORT = 1_000  # ms left: below the 60 s reserve, so every invocation stops after one image


def images(session: Session, aws: dict[str, Any], count: int, data: list[bytes] | None = None) -> Any:
    job = factories.crawl_job(session, keywords=["cat", "dog"])
    blobs = data or [None] * count
    rows = [
        factories.stored_image(session, aws["s3"], aws["bucket"], job, blobs[n], seed=n, keyword=("cat", "dog")[n % 2])
        for n in range(count)
    ]
    session.commit()
    return job, rows


def suspended(session: Session, aws: dict[str, Any], app: ModuleType, fmt: str, count: int = 3) -> Any:
    """An export of `count` images stopped after its first image by a nearly spent invocation."""
    job, rows = images(session, aws, count)
    export = export_job(session, job, fmt)
    deliver(app, export.id, lambda_context("export", SHORT))
    return export, rows


def objects(aws: dict[str, Any], prefix: str = "exports/") -> list[str]:
    listing = aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=prefix)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def uploads(aws: dict[str, Any]) -> list[Any]:
    return aws["s3"].list_multipart_uploads(Bucket=aws["bucket"]).get("Uploads", [])


def image_files(data: bytes, fmt: str) -> dict[str, bytes]:
    if fmt in ("zip", "tar", "tar.gz"):
        return {name: body for name, body in members(data, fmt).items() if name.endswith(".jpg")}
    return {"document": data.replace(b"\r\n", b"\n")}


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz", "csv", "json", "jsonl"])
def test_an_export_continues_across_invocations_into_the_same_bytes(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, rows = images(session, env, 5)
    whole = export_job(session, job, fmt, name="whole")
    deliver(export_app, whole.id)
    pieces = export_job(session, job, fmt, name="pieces")

    deliver(export_app, pieces.id, lambda_context("export", SHORT))

    state = reload(session, pieces)
    assert state.status is JobStatus.RUNNING and state.exported_images == 1 and state.progress == 20
    assert state.checkpoint is not None and state.checkpoint["position"] == rows[0].id
    assert state.checkpoint["lease_owner"] is None
    assert [upload["UploadId"] for upload in uploads(env)] == [state.checkpoint["upload"]["upload_id"]]
    directory = [f"{state.checkpoint['key']}.directory-0"] if fmt == "zip" else []  # the zip's first records
    assert sorted(objects(env, state.checkpoint["key"])) == sorted([*directory, state.checkpoint["upload"]["tail_key"]])

    assert drain(export_app, env["queues"]["export"], env["sqs"], lambda_context("export", SHORT)) == 5

    done = reload(session, pieces)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert (done.exported_images, done.total_images, done.progress) == (5, 5, 100)
    assert uploads(env) == []
    assert done.storage_key is not None
    described = [f"{done.storage_key.rsplit('/', 1)[0]}/croissant.json"] if fmt in ("csv", "json", "jsonl") else []
    assert sorted(objects(env, f"exports/{job.project_id}/{pieces.id}-")) == sorted([done.storage_key, *described])
    stored = fetch(env, done.storage_key)  # its object, hashed across five invocations
    name, size, digest = done.storage_key.rsplit("/", 1)[1], len(stored), hashlib.sha256(stored).hexdigest()
    assert [(file["name"], file["size"], file["sha256"]) for file in done.files][:1] == [(name, size, digest)]
    assert [file["name"] for file in done.files][1:] == [name.rsplit("/", 1)[-1] for name in described]
    expected = image_files(fetch(env, reload(session, whole).storage_key or ""), fmt)
    produced = image_files(fetch(env, done.storage_key or ""), fmt)
    if fmt in ("csv", "json", "jsonl"):  # links carry signing times; compare everything else
        strip = __import__("re").compile(rb"https?://[^\",\s]+")
        expected = {key: strip.sub(b"", value) for key, value in expected.items()}
        produced = {key: strip.sub(b"", value) for key, value in produced.items()}
    assert produced == expected


def test_a_zip_export_suspended_after_every_image_keeps_its_checkpoint_size(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, rows = images(session, env, 12)
    export = export_job(session, job, "zip")
    deliver(export_app, export.id, lambda_context("export", SHORT))
    sizes = []
    while messages := env["sqs"].receive_message(QueueUrl=env["queues"]["export"]).get("Messages"):
        env["sqs"].delete_message(QueueUrl=env["queues"]["export"], ReceiptHandle=messages[0]["ReceiptHandle"])
        sizes.append(len(json.dumps(reload(session, export).checkpoint)))
        deliver(export_app, export.id, lambda_context("export", SHORT))

    done = reload(session, export)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert len(sizes) == 12  # after each of the 12 images (the last invocation then writes the extra files)
    assert max(sizes) - min(sizes) < 20, sizes  # digits of counters only; an entry's record alone is ~100 bytes
    files = members(fetch(env, done.storage_key or ""), "zip")
    assert sorted(name for name in files if name.endswith(".jpg")) == sorted(f"{row.id}_{row.filename}" for row in rows)
    assert objects(env) == [done.storage_key] and uploads(env) == []  # the directory's objects went with the rest


def test_parts_are_uploaded_across_invocations_and_joined_in_order(
    session: Session, env: dict[str, Any], export_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_PART_SIZE_MB", "5")
    get_settings.cache_clear()
    blobs = [os.urandom(1_500_000) for _ in range(8)]
    job, rows = images(session, env, 8, data=blobs)
    export = export_job(session, job, "tar")

    deliver(export_app, export.id, lambda_context("export", SHORT))
    drain(export_app, env["queues"]["export"], env["sqs"], lambda_context("export", SHORT))

    done = reload(session, export)
    head = env["s3"].head_object(Bucket=env["bucket"], Key=done.storage_key)
    assert head["ETag"].strip('"').endswith("-3")  # 5 MiB + 5 MiB + the rest
    files = members(fetch(env, done.storage_key or ""), "tar")
    assert [files[f"{row.id}_{row.filename}"] for row in rows] == blobs


def test_parts_stay_even_for_five_thousand_then_grow_so_ten_thousand_hold_the_largest_object() -> None:
    largest = 5 * 1024**4  # S3's
    base = multipart.base_part_size(8 * multipart.MiB, largest)
    sizes = [multipart.part_size(number, base) for number in range(1, multipart.MAX_PARTS + 1)]
    assert sizes[0] == sizes[4999] == base and sizes[5000] == sizes[5999] == 2 * base and sizes[6000] == 4 * base
    assert all(multipart.MIN_PART_SIZE <= size <= multipart.MAX_PART_SIZE for size in sizes)
    assert sum(sizes) >= largest
    assert multipart.part_size(1, 1) == multipart.MIN_PART_SIZE


@pytest.mark.parametrize("expected", [0, 10**6, 5_000 * 8 * 2**20, 5_000 * 8 * 2**20 + 1, 115 * 10**9, 5 * 1024**4])
def test_the_even_parts_hold_the_expected_size_and_the_rest_many_times_more(expected: int) -> None:
    configured = 8 * multipart.MiB
    base = multipart.base_part_size(configured, expected)
    assert base % multipart.MiB == 0 and configured <= base <= multipart.MAX_PART_SIZE
    assert multipart.EVEN_PARTS * base >= expected
    assert base == configured or multipart.EVEN_PARTS * (base - multipart.MiB) < expected  # no larger than needed
    capacity = sum(multipart.part_size(number, base) for number in range(1, multipart.MAX_PARTS + 1))
    assert capacity >= 5 * max(expected, 1)


@pytest.mark.parametrize(
    ("fmt", "base_mib"),
    [("tar", 13), ("webdataset", 8)],  # 60 GiB over 5,000 parts: 12.3 MiB; shards of at most 1 GiB: the setting
)
def test_an_export_larger_than_its_even_parts_hold_starts_with_larger_parts(
    session: Session, env: dict[str, Any], export_app: ModuleType, fmt: str, base_mib: int
) -> None:
    """The writer holds three parts: parts that doubled late in a large export raised its memory at its end."""
    job, _ = images(session, env, 3)
    session.execute(update(Image).where(Image.crawl_job_id == job.id).values(file_size=20 * 1024**3))
    session.commit()
    export = export_job(session, job, fmt)
    deliver(export_app, export.id, lambda_context("export", SHORT))

    assert reload(session, export).checkpoint["upload"]["base_part_size"] == base_mib * multipart.MiB


def test_a_redelivered_message_never_makes_a_second_object(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    export, _ = suspended(session, env, export_app, "zip")
    continuation = env["sqs"].receive_message(QueueUrl=env["queues"]["export"])["Messages"][0]
    env["sqs"].delete_message(QueueUrl=env["queues"]["export"], ReceiptHandle=continuation["ReceiptHandle"])

    for _ in range(2):  # the continuation, then a duplicate of it
        deliver(export_app, export.id)
    first = reload(session, export)
    facts = (first.completed_at, first.storage_key, first.file_size, first.download_url)
    deliver(export_app, export.id)  # and one more after completion

    again = reload(session, export)
    assert again.status is JobStatus.COMPLETED
    assert (again.completed_at, again.storage_key, again.file_size, again.download_url) == facts
    assert objects(env) == [again.storage_key] and uploads(env) == []
    assert len([name for name in members(fetch(env, again.storage_key or ""), "zip") if name.endswith(".jpg")]) == 3


def test_a_duplicate_arriving_while_another_invocation_works_is_dropped(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    export, _ = suspended(session, env, export_app, "tar")
    checkpoint = reload(session, export).checkpoint or {}

    def lease(until: timedelta) -> None:
        leased = {
            **checkpoint,
            "lease_owner": "other-invocation",
            "lease_until": (datetime.now(UTC) + until).isoformat(),
        }
        session.execute(update(ExportJob).where(ExportJob.id == export.id).values(checkpoint=leased))
        session.commit()

    lease(timedelta(minutes=5))
    deliver(export_app, export.id)
    assert reload(session, export).exported_images == 1  # untouched: the holder owns it

    lease(timedelta(seconds=-1))  # the holder died
    deliver(export_app, export.id)
    done = reload(session, export)
    assert done.status is JobStatus.COMPLETED and done.exported_images == 3


def test_a_failure_mid_export_aborts_the_upload_and_explains(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    export, rows = suspended(session, env, export_app, "zip", count=4)
    assert len(uploads(env)) == 1
    env["s3"].delete_object(Bucket=env["bucket"], Key=rows[2].storage_url)

    drain(export_app, env["queues"]["export"], env["sqs"])

    failed = reload(session, export)
    assert failed.status is JobStatus.FAILED and failed.checkpoint is None
    assert failed.error_message == f"Image {rows[2].id} is missing from storage ({rows[2].storage_url})."
    assert uploads(env) == [] and objects(env) == []


def test_cancelling_a_suspended_export_drops_its_upload(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    export, _ = suspended(session, env, export_app, "tar.gz")
    session.execute(update(ExportJob).where(ExportJob.id == export.id).values(status=JobStatus.CANCELLED))
    session.commit()

    drain(export_app, env["queues"]["export"], env["sqs"])

    cancelled = reload(session, export)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.checkpoint is None
    assert uploads(env) == [] and objects(env) == []


def test_joining_parts_again_after_a_lost_commit_is_harmless(env: dict[str, Any]) -> None:
    state = multipart.start(env["s3"], env["bucket"], "exports/1/x/a.tar", 5 * multipart.MiB, "application/x-tar")
    writer = multipart.MultipartWriter(env["s3"], env["bucket"], "exports/1/x/a.tar", state)
    writer.write(b"archive bytes")
    state = writer.finish()

    multipart.assemble(env["s3"], env["bucket"], "exports/1/x/a.tar", state)
    multipart.assemble(env["s3"], env["bucket"], "exports/1/x/a.tar", state)

    assert fetch(env, "exports/1/x/a.tar") == b"archive bytes"


def test_a_malformed_message_fails_alone(session: Session, env: dict[str, Any], export_app: ModuleType) -> None:
    job, _ = images(session, env, 1)
    export = export_job(session, job, "zip")
    bad = sqs_record('{"export_job_id": "not a number"}')
    event = sqs_event(sqs_record(ExportMessage(export_job_id=export.id)), bad)

    result = export_app.lambda_handler(event, lambda_context("export"))

    assert result == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert reload(session, export).status is JobStatus.COMPLETED
