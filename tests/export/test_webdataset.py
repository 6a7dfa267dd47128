"""WebDataset exports: tar shards per split under a sample count and a byte cap, `classes.txt`, every object
listed with its sha256 and link; resumed, redelivered, killed, failed and deleted exports stay exact and clean;
and the `webdataset` library itself reads what the links download."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import update
from sqlalchemy.orm import Session

from pixcrawler import links
from pixcrawler.exports import selection, webdataset
from pixcrawler.models import ExportJob, JobStatus
from pixcrawler.schemas import ExportJobResponse
from pixcrawler.services import projects
from pixcrawler.settings import get_settings
from tests import events, factories
from tests.events import lambda_context
from tests.export.conftest import deliver, drain, export_job, fetch, reload
from tests.export.test_croissant import opened
from tests.export.test_links import s3_server  # noqa: F401 (the fixture, moto served over HTTP)

SHORT = 1_000  # ms left: below the reserve, so every invocation stops after one image


def stored(session: Session, aws: dict[str, Any], count: int, blobs: list[bytes] | None = None) -> Any:
    job = factories.crawl_job(session, keywords=["dog", "cat"])
    rows = [
        factories.stored_image(
            session,
            aws["s3"],
            aws["bucket"],
            job,
            blobs[n] if blobs else None,
            seed=n,
            keyword=("dog", "cat")[n % 2],
            creator=f"Creator {n}",
        )
        for n in range(count)
    ]
    session.commit()
    return job, rows


def listed(aws: dict[str, Any], export: ExportJob) -> dict[str, bytes]:
    """Every object the export lists, by name, in its order."""
    return {file["name"]: fetch(aws, file["key"]) for file in export.files}


def data_objects(aws: dict[str, Any], export: ExportJob) -> dict[str, bytes]:
    """The objects that hold the data: all but `croissant.json`, which names the export and its date."""
    return {name: data for name, data in listed(aws, export).items() if name != "croissant.json"}


def samples(shard: bytes) -> dict[str, dict[str, bytes]]:
    """A shard's samples by key, each its members by extension, as WebDataset groups them."""
    grouped: dict[str, dict[str, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(shard), mode="r:") as archive:
        for info in archive.getmembers():
            key, _, extension = info.name.partition(".")
            extracted = archive.extractfile(info)
            assert extracted is not None
            grouped.setdefault(key, {})[extension] = extracted.read()
    return grouped


def keys_under(aws: dict[str, Any], prefix: str) -> list[str]:
    listing = aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=prefix)
    return sorted(entry["Key"] for entry in listing.get("Contents", []))


def uploads(aws: dict[str, Any]) -> list[Any]:
    return aws["s3"].list_multipart_uploads(Bucket=aws["bucket"]).get("Uploads", [])


def folder(export: ExportJob) -> str:
    return (export.storage_key or "").rsplit("/", 1)[0] + "/"


@pytest.mark.usefixtures("env")
def test_shards_hold_at_most_the_sample_count_with_rows_labels_and_classes(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, rows = stored(session, env, 7)
    export = export_job(session, job, "webdataset", shard_max_samples=3)

    deliver(export_app, export.id)

    export = reload(session, export)
    assert export.status is JobStatus.COMPLETED, export.error_message
    files = listed(env, export)
    shard_names = ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert list(files) == [*shard_names, "classes.txt", "croissant.json"]
    assert files["classes.txt"] == b"cat\ndog\n"
    described = json.loads(files["croissant.json"])
    assert [(entry["name"], entry["contentSize"], entry["sha256"]) for entry in described["distribution"]] == [
        (name, f"{len(files[name])} B", hashlib.sha256(files[name]).hexdigest())
        for name in [*shard_names, "classes.txt"]
    ]
    assert described["keywords"] == ["dog", "cat"] and "recordSet" not in described
    response = ExportJobResponse.model_validate(export)
    for number, (file, (name, data)) in enumerate(zip(response.files, files.items(), strict=True)):
        assert (file.name, file.size, file.sha256) == (name, len(data), hashlib.sha256(data).hexdigest())
        assert file.download_url is not None
        assert links.verify_file(file.download_url.rsplit("/", 1)[1]) == (export.id, number)
    assert response.download_url == response.files[0].download_url
    assert (export.file_size, export.storage_key) == (len(files["train-000000.tar"]), export.files[0]["key"])
    assert keys_under(env, folder(export)) == sorted(file["key"] for file in export.files)

    shards = [samples(files[f"train-00000{n}.tar"]) for n in range(3)]
    assert [len(shard) for shard in shards] == [3, 3, 1]
    together = {key: sample for shard in shards for key, sample in shard.items()}
    assert list(together) == [f"{row.id:010d}" for row in rows]  # in id order, keys without dots
    for row in rows:
        sample = together[f"{row.id:010d}"]
        assert set(sample) == {"jpg", "json", "cls"}
        assert sample["jpg"] == fetch(env, row.storage_url)
        assert sample["cls"] == (b"0" if row.keyword == "cat" else b"1")
        facts = json.loads(sample["json"])
        assert (facts["file_name"], facts["label"], facts["split"]) == (f"{row.id:010d}.jpg", row.keyword, "train")
        assert (facts["sha256"], facts["creator"], facts["license"]) == (row.sha256, row.creator, "cc-by")
        assert facts["original_url"] == row.original_url and facts["label_index"] == int(sample["cls"])


@pytest.mark.usefixtures("env")
def test_a_shard_closes_before_its_byte_cap_and_an_oversized_sample_stands_alone(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    cap = 64 * 1024
    blobs = [os.urandom(25_000), os.urandom(25_000), os.urandom(25_000), os.urandom(100_000), os.urandom(10)]
    job, rows = stored(session, env, 5, blobs)
    export = export_job(session, job, "webdataset", shard_max_bytes=cap)

    deliver(export_app, export.id)

    files = listed(env, reload(session, export))
    shards = {name: samples(data) for name, data in files.items() if name.endswith(".tar")}
    keys = [[f"{row.id:010d}" for row in group] for group in (rows[:2], rows[2:3], rows[3:4], rows[4:])]
    assert [list(shard) for shard in shards.values()] == keys
    oversized = "train-000002.tar"
    assert all(len(files[name]) <= cap for name in shards if name != oversized)
    assert len(files[oversized]) > cap and len(files[oversized]) % tarfile.RECORDSIZE == 0


@pytest.mark.usefixtures("env")
def test_an_interrupted_export_writes_the_same_objects_and_their_sha256(
    session: Session, env: dict[str, Any], export_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORT_PART_SIZE_MB", "5")
    get_settings.cache_clear()
    job, _ = stored(session, env, 8, [os.urandom(1_500_000) for _ in range(8)])
    whole = export_job(session, job, "webdataset", name="whole", shard_max_samples=5)
    deliver(export_app, whole.id)
    pieces = export_job(session, job, "webdataset", name="pieces", shard_max_samples=5)

    deliver(export_app, pieces.id, lambda_context("export", SHORT))
    checkpoint = reload(session, pieces).checkpoint or {}
    assert checkpoint["upload"]["tail_key"] and checkpoint["passes"] == ["train"]
    assert drain(export_app, env["queues"]["export"], env["sqs"], lambda_context("export", SHORT)) == 8

    whole, pieces = reload(session, whole), reload(session, pieces)
    assert pieces.status is JobStatus.COMPLETED, pieces.error_message
    assert data_objects(env, pieces) == data_objects(env, whole)
    facts = [[(file["name"], file["size"], file["sha256"]) for file in export.files[:-1]] for export in (pieces, whole)]
    assert facts[0] == facts[1]
    for file in pieces.files:  # parts went up across invocations; the digest is still the object's
        data = fetch(env, folder(pieces) + file["name"])
        assert file["sha256"] == hashlib.sha256(data).hexdigest() and file["size"] == len(data)
    assert len(fetch(env, folder(pieces) + "train-000000.tar")) > 5 * 1024 * 1024
    assert uploads(env) == []
    assert keys_under(env, folder(pieces)) == sorted(folder(pieces) + file["name"] for file in pieces.files)


@pytest.mark.usefixtures("env")
def test_a_redelivered_continuation_never_makes_a_second_shard(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, _ = stored(session, env, 4)
    export = export_job(session, job, "webdataset", shard_max_samples=1)
    deliver(export_app, export.id, lambda_context("export", SHORT))
    continuation = env["sqs"].receive_message(QueueUrl=env["queues"]["export"])["Messages"][0]
    env["sqs"].delete_message(QueueUrl=env["queues"]["export"], ReceiptHandle=continuation["ReceiptHandle"])

    for _ in range(2):  # the continuation, then a duplicate of it
        deliver(export_app, export.id)
    first = reload(session, export)
    facts = (first.completed_at, first.storage_key, first.files)
    deliver(export_app, export.id)  # and one more after completion

    again = reload(session, export)
    assert again.status is JobStatus.COMPLETED and (again.completed_at, again.storage_key, again.files) == facts
    assert [file["name"] for file in again.files] == [f"train-00000{n}.tar" for n in range(4)] + [
        "classes.txt",
        "croissant.json",
    ]
    assert keys_under(env, "exports/") == sorted(file["key"] for file in again.files) and uploads(env) == []


class Killed(BaseException):
    """The Lambda runtime ending an invocation: nothing of ours runs after it (no failure is recorded)."""


@pytest.mark.usefixtures("env")
def test_an_invocation_killed_after_starting_a_shard_leaves_no_second_copy(
    session: Session, env: dict[str, Any], export_app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, _ = stored(session, env, 5)
    whole = export_job(session, job, "webdataset", name="whole", shard_max_samples=2)
    deliver(export_app, whole.id)
    killed = export_job(session, job, "webdataset", name="killed", shard_max_samples=2)
    written = selection.written

    def die_after_the_third_image(job: Any, checkpoint: Any, image: Any) -> None:
        written(job, checkpoint, image)
        if checkpoint.exported == 3:  # the second shard's upload has just been started
            raise Killed

    monkeypatch.setattr(selection, "written", die_after_the_third_image)
    with pytest.raises(Killed):
        deliver(export_app, killed.id)
    monkeypatch.setattr(selection, "written", written)
    assert len(uploads(env)) == 2  # the first shard's (in the checkpoint) and the second's (in no checkpoint)
    lost = reload(session, killed).checkpoint or {}
    session.execute(  # the dead invocation's lease runs out
        update(ExportJob).where(ExportJob.id == killed.id).values(checkpoint={**lost, "lease_until": None})
    )
    session.commit()

    deliver(export_app, killed.id)  # the redelivered message

    done, whole = reload(session, killed), reload(session, whole)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert data_objects(env, done) == data_objects(env, whole) and uploads(env) == []
    assert keys_under(env, folder(done)) == sorted(file["key"] for file in done.files)


@pytest.mark.usefixtures("env")
def test_a_failed_webdataset_export_aborts_every_upload_and_leaves_no_object(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, rows = stored(session, env, 4)
    export = export_job(session, job, "webdataset", shard_max_samples=1)
    deliver(export_app, export.id, lambda_context("export", SHORT))
    deliver(export_app, export.id, lambda_context("export", SHORT))
    assert len(uploads(env)) == 2  # the first shard finished but not joined, the second open
    env["s3"].delete_object(Bucket=env["bucket"], Key=rows[2].storage_url)

    drain(export_app, env["queues"]["export"], env["sqs"])

    failed = reload(session, export)
    assert failed.status is JobStatus.FAILED, failed.error_message
    assert uploads(env) == [] and keys_under(env, "exports/") == []


@pytest.mark.usefixtures("env")
def test_deleting_the_project_removes_every_shard_and_unfinished_upload(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, _ = stored(session, env, 4)
    finished = export_job(session, job, "webdataset", name="finished", shard_max_samples=1)
    deliver(export_app, finished.id)
    running = export_job(session, job, "webdataset", name="running", shard_max_samples=1)
    deliver(export_app, running.id, lambda_context("export", SHORT))
    deliver(export_app, running.id, lambda_context("export", SHORT))
    assert len(reload(session, finished).files) == 6 and len(uploads(env)) == 2

    projects.delete(session, job.project.user_id, job.project_id)
    session.commit()

    assert keys_under(env, f"exports/{job.project_id}/") == [] and uploads(env) == []


@pytest.fixture
def api_function() -> ModuleType:
    from tests.conftest import load_function

    return load_function("api")


def test_webdataset_reads_every_sample_downloaded_through_the_listed_links(
    session: Session,
    s3_server: dict[str, Any],  # noqa: F811 (the fixture imported above)
    export_app: ModuleType,
    api_function: ModuleType,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import webdataset as wds

    job, rows = stored(session, s3_server, 5)
    export = export_job(session, job, "webdataset", shard_max_samples=2)
    deliver(export_app, export.id)
    export = reload(session, export)
    owner = job.project.user_id
    session.commit()

    reply = api_function.lambda_handler(
        events.http_event("GET", f"/v1/export-jobs/{export.id}", user=owner), lambda_context("api")
    )
    body = json.loads(reply["body"])
    assert [file["name"] for file in body["files"]] == [f"train-00000{n}.tar" for n in range(3)] + [
        "classes.txt",
        "croissant.json",
    ]
    paths: dict[str, Path] = {}
    for file in body["files"]:
        token = urlsplit(file["download_url"]).path.rsplit("/", 1)[1]
        redirect = api_function.lambda_handler(
            events.http_event("GET", f"/v1/downloads/{token}"), lambda_context("api")
        )
        assert redirect["statusCode"] == 302
        data = requests.get(redirect["headers"]["Location"], timeout=10).content
        assert (len(data), hashlib.sha256(data).hexdigest()) == (file["size"], file["sha256"])
        paths[file["name"]] = tmp_path / file["name"]
        paths[file["name"]].write_bytes(data)

    described = opened(paths["croissant.json"], caplog)  # mlcroissant validates it: no error, no warning
    assert {entry.name for entry in described.metadata.distribution} == set(paths) - {"croissant.json"}
    classes = paths["classes.txt"].read_text().splitlines()
    shards = [str(path) for name, path in paths.items() if name.endswith(".tar")]
    seen: Iterator[dict[str, Any]] = iter(wds.WebDataset(shards, shardshuffle=False).decode("pil"))
    read = [(sample["__key__"], sample["jpg"], sample["cls"], sample["json"]) for sample in seen]
    assert [key for key, *_ in read] == [f"{row.id:010d}" for row in rows]
    for (_, image, label, facts), row in zip(read, rows, strict=True):
        image.load()
        assert image.size == (256, 256) and image.mode == "RGB"
        assert classes[label] == row.keyword and facts["sha256"] == row.sha256


def test_classes_txt_keeps_every_label_on_its_own_line() -> None:
    """Line n is label index n, whatever a keyword holds: a line break in one cannot shift the others."""
    assert webdataset.classes_text(["", "a\nb\u2028c", "cat"]) == b"unlabeled\na b c\ncat\n"


@pytest.mark.usefixtures("env")
def test_each_split_gets_its_own_shards_and_an_interrupted_export_cuts_them_alike(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, rows = stored(session, env, 9)
    options = {"splits": {"train": 0.6, "test": 0.4}, "split_seed": 5, "shard_max_samples": 2}
    whole = export_job(session, job, "webdataset", name="whole", **options)
    deliver(export_app, whole.id)
    pieces = export_job(session, job, "webdataset", name="pieces", **options)

    deliver(export_app, pieces.id, lambda_context("export", SHORT))
    drain(export_app, env["queues"]["export"], env["sqs"], lambda_context("export", SHORT))

    whole, pieces = reload(session, whole), reload(session, pieces)
    assert pieces.status is JobStatus.COMPLETED, pieces.error_message
    files = listed(env, whole)
    assert data_objects(env, pieces) == data_objects(env, whole)
    shards = {name: samples(data) for name, data in files.items() if name.endswith(".tar")}
    names = list(files)
    assert names[-2:] == ["classes.txt", "croissant.json"] and names[:-2] == sorted(names[:-2])  # test, train
    by_split: dict[str, list[str]] = {"test": [], "train": []}
    for name, shard in shards.items():
        split = name.split("-")[0]
        assert 1 <= len(shard) <= 2
        for key, sample in shard.items():
            assert json.loads(sample["json"])["split"] == split
            by_split[split].append(key)
    assert sorted(key for keys in by_split.values() for key in keys) == [f"{row.id:010d}" for row in rows]
    counts = {split: sum(labels.values()) for split, labels in (whole.split_counts or {}).items()}
    assert counts == {split: len(keys) for split, keys in by_split.items()} and all(counts.values())


def test_the_readme_round_trip_resized_shards_per_split_train_with_webdataset(
    session: Session,
    s3_server: dict[str, Any],  # noqa: F811 (the fixture imported above)
    export_app: ModuleType,
    api_function: ModuleType,
    tmp_path: Path,
) -> None:
    """Issue #16's "done when": the exact request of the README, through the API; the listed links give shards
    per split that webdataset reads, every image decoded at the requested size with its label."""
    import webdataset as wds

    from pixcrawler_local import samples

    sizes = [(640, 480), (300, 500), (1024, 768), (257, 256)] * 5
    blobs = [samples.jpeg(n, width, height) for n, (width, height) in enumerate(sizes)]
    job, rows = stored(session, s3_server, len(blobs), blobs)
    owner = job.project.user_id
    session.commit()

    def api(method: str, path: str, body: Any = None) -> dict[str, Any]:
        event = events.http_event(method, path, user=owner, body=body)
        reply = api_function.lambda_handler(event, lambda_context("api"))
        return {"status": reply["statusCode"], **reply, "json": json.loads(reply["body"] or "null")}

    request = {
        "name": "cats",
        "format": "webdataset",
        "options": {"image_size": 256, "resize_mode": "center_crop", "splits": {"train": 0.9, "test": 0.1}},
    }
    created = api("POST", f"/v1/crawl-jobs/{job.id}/export-jobs", request)
    assert created["status"] == 202, created["json"]
    deliver(export_app, created["json"]["id"])
    body = api("GET", f"/v1/export-jobs/{created['json']['id']}")["json"]
    assert body["status"] == "completed", body["error_message"]
    names = [file["name"] for file in body["files"]]
    assert names == ["test-000000.tar", "train-000000.tar", "classes.txt", "croissant.json"]
    for file in body["files"]:
        token = urlsplit(file["download_url"]).path.rsplit("/", 1)[1]
        redirect = api_function.lambda_handler(
            events.http_event("GET", f"/v1/downloads/{token}"), lambda_context("api")
        )
        (tmp_path / file["name"]).write_bytes(requests.get(redirect["headers"]["Location"], timeout=10).content)

    classes = (tmp_path / "classes.txt").read_text().splitlines()
    labels = {f"{row.id:010d}": row.keyword for row in rows}
    per_split: dict[str, int] = {}
    for split in ("train", "test"):
        dataset = wds.WebDataset([str(tmp_path / f"{split}-000000.tar")], shardshuffle=False).decode("pil")
        for sample in dataset:
            assert sample["jpg"].size == (256, 256) and sample["jpg"].mode == "RGB"
            assert classes[sample["cls"]] == labels[sample["__key__"]] == sample["json"]["label"]
            assert (sample["json"]["split"], sample["json"]["output_width"]) == (split, 256)
            per_split[split] = per_split.get(split, 0) + 1
    assert sum(per_split.values()) == len(rows)
    counted = {split: sum(labels.values()) for split, labels in body["split_counts"].items()}
    assert counted == per_split
