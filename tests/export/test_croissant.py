"""`croissant.json` is opened by the library people load Croissant with: `mlcroissant` validates the document
and reads every record (image, label, licence, sha256) from the extracted export, offline."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import mlcroissant
import pytest
from PIL import Image as PILImage
from sqlalchemy import update
from sqlalchemy.orm import Session

from pixcrawler.exports import croissant
from pixcrawler.models import ExportJob, Image, JobStatus
from pixcrawler_local import samples
from tests import factories
from tests.events import lambda_context
from tests.export.archive import members
from tests.export.conftest import deliver, drain, export_job, fetch, reload

pytestmark = pytest.mark.usefixtures("env")

CC_BY = ("cc-by", "https://creativecommons.org/licenses/by/4.0/")
CC0 = ("cc0", "https://creativecommons.org/publicdomain/zero/1.0/")
SHORT = 1_000  # ms left: below the reserve, so every invocation stops after one image


def labelled_images(session: Session, aws: dict[str, Any]) -> list[Image]:
    """Two labels, JPEG and PNG files of distinct sizes, two licences and a creator credited twice."""
    job = factories.crawl_job(session, keywords=["cat", "dog"])
    images = []
    for n in range(5):
        png = n == 3
        data = samples.png(n, 40 + n, 30) if png else samples.jpeg(n, 40 + n, 30)
        licence, licence_url = CC0 if n % 2 else CC_BY
        images.append(
            factories.stored_image(
                session,
                aws["s3"],
                aws["bucket"],
                job,
                data,
                seed=n,
                keyword=("cat", "dog")[n % 2],
                extension="png" if png else "jpg",
                filename=f"photo{n}.{'png' if png else 'jpg'}",
                format="png" if png else "jpeg",
                width=40 + n,
                height=30,
                license=licence,
                license_url=licence_url,
                creator=("Ann", "Bo", "Ann", "Cy", "Bo")[n],
            )
        )
    session.commit()
    return images


def exported(session: Session, aws: dict[str, Any], app: ModuleType, images: list[Image], **options: Any) -> Any:
    """The finished export row and its archive's files by path."""
    fmt = options.pop("fmt", "zip")
    export = export_job(session, images[0].crawl_job, fmt, **options)
    deliver(app, export.id)
    export = reload(session, export)
    assert export.status is JobStatus.COMPLETED, export.error_message
    return export, members(fetch(aws, export.storage_key or ""), fmt)


def extract(files: dict[str, bytes], target: Path) -> Path:
    for name, body in files.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(body)
    return target / "croissant.json"


def opened(path: Path, caplog: pytest.LogCaptureFixture) -> Any:
    """The dataset as `mlcroissant` loads it, with no validation error, warning or logged complaint."""
    with caplog.at_level(logging.WARNING):
        dataset = mlcroissant.Dataset(jsonld=path)
    issues = dataset.metadata.ctx.issues
    assert (issues.errors, issues.warnings) == (set(), set())
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    return dataset


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_mlcroissant_validates_the_archive_and_reads_every_record(
    fmt: str,
    session: Session,
    env: dict[str, Any],
    export_app: ModuleType,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    images = labelled_images(session, env)
    export, files = exported(session, env, export_app, images, fmt=fmt, layout="by_keyword")

    dataset = opened(extract(files, tmp_path), caplog)
    records = list(dataset.records(record_set="images"))

    by_path = {f"{image.keyword}/{image.id}_photo{n}.{image.storage_url[-3:]}": image for n, image in enumerate(images)}
    assert sorted(text(record["images/file_name"]) for record in records) == sorted(by_path)
    for record in records:
        path = text(record["images/file_name"])
        image = by_path[path]
        assert text(record["images/label"]) == image.keyword
        assert text(record["images/split"]) == "train"
        assert (text(record["images/license"]), text(record["images/license_url"])) == (
            image.license,
            image.license_url,
        )
        assert text(record["images/creator"]) == image.creator
        assert text(record["images/source_url"]) == image.source_url
        assert text(record["images/sha256"]) == image.sha256 == hashlib.sha256(files[path]).hexdigest()
        assert (record["images/width"], record["images/height"]) == (image.width, image.height)
        assert record["images/image"].size == (image.width, image.height)

    document = json.loads(files["croissant.json"])
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert document["name"] == "My Cats"
    assert document["datePublished"] == export.created_at.isoformat()
    assert document["creator"] == [{"@type": "sc:Person", "name": name} for name in ("Ann", "Bo", "Cy")]
    assert document["license"] == [{"@type": "sc:CreativeWork", "name": name, "url": url} for name, url in (CC_BY, CC0)]
    listed = {item["name"]: item for item in document["distribution"] if item["@type"] == "cr:FileObject"}
    assert set(listed) == {"manifest.csv", "ATTRIBUTION.txt"}
    for name, item in listed.items():
        assert item["sha256"] == hashlib.sha256(files[name]).hexdigest()
        assert item["contentSize"] == f"{len(files[name])} B"


def test_without_a_manifest_the_records_come_from_the_hugging_face_metadata(
    session: Session, env: dict[str, Any], export_app: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = labelled_images(session, env)
    _, files = exported(session, env, export_app, images, layout="hf_imagefolder", include_manifest=False)
    assert "manifest.csv" not in files

    records = list(opened(extract(files, tmp_path), caplog).records(record_set="images"))

    assert sorted(text(record["images/sha256"]) for record in records) == sorted(image.sha256 for image in images)
    assert {text(record["images/label"]) for record in records} == {"cat", "dog"}


def test_without_any_record_file_the_document_still_describes_the_dataset_and_its_files(
    session: Session, env: dict[str, Any], export_app: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = labelled_images(session, env)
    _, files = exported(session, env, export_app, images, layout="flat", include_manifest=False)

    dataset = opened(extract(files, tmp_path), caplog)

    assert dataset.metadata.record_sets == []
    assert [item.name for item in dataset.metadata.distribution] == ["ATTRIBUTION.txt", "image-files"]
    assert dataset.metadata.distribution[0].sha256 == hashlib.sha256(files["ATTRIBUTION.txt"]).hexdigest()


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_an_interrupted_export_writes_the_same_archive_croissant_included(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    images = labelled_images(session, env)
    whole = export_job(session, images[0].crawl_job, fmt)
    pieces = export_job(session, images[0].crawl_job, fmt)
    asked = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
    session.execute(update(ExportJob).where(ExportJob.id.in_([whole.id, pieces.id])).values(created_at=asked))
    session.commit()

    deliver(export_app, whole.id)
    deliver(export_app, pieces.id, lambda_context("export", SHORT))
    assert drain(export_app, env["queues"]["export"], env["sqs"], lambda_context("export", SHORT)) == 5

    unbroken = fetch(env, reload(session, whole).storage_key or "")
    resumed = fetch(env, reload(session, pieces).storage_key or "")
    if fmt == "tar.gz":  # one gzip member per invocation; the tar inside is the same stream
        unbroken, resumed = gzip.decompress(unbroken), gzip.decompress(resumed)
        fmt = "tar"
    assert resumed == unbroken
    document = json.loads(members(resumed, fmt)["croissant.json"])
    assert document["datePublished"] == asked.isoformat()


def test_the_images_read_back_are_the_exported_pixels(
    session: Session, env: dict[str, Any], export_app: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images = labelled_images(session, env)
    _, files = exported(session, env, export_app, images, layout="flat")

    records = opened(extract(files, tmp_path), caplog).records(record_set="images")

    for record in records:
        path = text(record["images/file_name"])
        expected = PILImage.open(io.BytesIO(files[path])).convert("RGB")
        assert record["images/image"].convert("RGB").tobytes() == expected.tobytes()


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_a_document_export_is_described_by_a_croissant_object_beside_it(
    fmt: str,
    session: Session,
    env: dict[str, Any],
    export_app: ModuleType,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    images = labelled_images(session, env)
    export = export_job(session, images[0].crawl_job, fmt)
    deliver(export_app, export.id)
    export = reload(session, export)
    assert export.status is JobStatus.COMPLETED, export.error_message
    key = export.storage_key or ""
    body = fetch(env, key)
    (tmp_path / f"my-cats.{fmt}").write_bytes(body)
    (tmp_path / "croissant.json").write_bytes(fetch(env, key.rsplit("/", 1)[0] + "/croissant.json"))

    dataset = opened(tmp_path / "croissant.json", caplog)
    records = list(dataset.records(record_set="images"))

    [document] = dataset.metadata.distribution
    assert (document.name, document.sha256) == (f"my-cats.{fmt}", hashlib.sha256(body).hexdigest())
    assert document.content_size == f"{len(body)} B"
    by_sha = {image.sha256: image for image in images}
    assert sorted(text(record["images/sha256"]) for record in records) == sorted(by_sha)
    for record in records:
        image = by_sha[text(record["images/sha256"])]
        assert (text(record["images/label"]), text(record["images/split"])) == (image.keyword, "train")
        assert (text(record["images/license"]), text(record["images/creator"])) == (image.license, image.creator)
        assert image.storage_url in text(record["images/image"])


def test_the_builder_describes_an_export_of_several_objects(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The shape a sharded export (WebDataset) calls it with: its objects listed with their sha256, credits
    from its rows, no file beside them to read records from."""
    credits = croissant.Credits()
    for n, label in enumerate(["cat", "dog", "cat"]):
        credits.add({"file_name": f"{n}.jpg", "label": label, "creator": "Ann", "license": "cc0", "license_url": None})
    shards = [
        croissant.DistributionFile(f"train-{n:06d}.tar", 10 + n, f"{n:064x}", "application/x-tar") for n in (0, 1)
    ]
    published = datetime(2026, 7, 1, tzinfo=UTC)
    path = tmp_path / "croissant.json"
    path.write_bytes(
        croissant.encode(
            croissant.document(
                title="Shards", published=published, credits=credits, files=shards, records=None, image_files=False
            )
        )
    )

    metadata = opened(path, caplog).metadata

    assert [(item.name, item.sha256) for item in metadata.distribution] == [(s.name, s.sha256) for s in shards]
    assert [creator.name for creator in metadata.creators] == ["Ann"]
    assert metadata.keywords == ["cat", "dog"] and metadata.date_published == published
