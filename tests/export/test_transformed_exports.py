"""Exports with transforms, through the handler: the archive holds resized RGB images under their output's
extension, the manifest describes what it holds, a long export resumes byte for byte, and an image that does
not decode fails the job readably."""

from __future__ import annotations

import gzip
import hashlib
import io
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pixcrawler.models import CrawlJob, ExportItem, ExportJob, JobStatus
from pixcrawler_local import samples
from tests import factories
from tests.events import lambda_context
from tests.export.archive import members
from tests.export.conftest import deliver, drain, export_job, fetch, jsonl, manifest_rows, reload
from tests.export.test_lifecycle import SHORT, objects, uploads

pytestmark = pytest.mark.usefixtures("env")

RESIZE: dict[str, Any] = {"image_size": 64, "resize_mode": "center_crop", "encode_format": "webp", "encode_quality": 80}


def encoded(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(Image.new("RGB", (160, 90), (200, 30, 30)), "JPEG", quality=90, exif=exif)


PLANTED = {  # extension -> bytes of kinds that need care
    "jpg": samples.jpeg(1, 300, 200),
    "png": encoded(Image.new("RGBA", (120, 100), (0, 0, 255, 100)), "PNG"),
    "gif": encoded(Image.new("P", (90, 90), 3), "GIF", transparency=3),
    "jpeg": encoded(Image.new("CMYK", (100, 140), (0, 255, 255, 0)), "JPEG"),
    "webp": rotated_jpeg(),  # stored under a misleading extension: the output's extension is what counts
}


def planted(session: Session, env: dict[str, Any]) -> tuple[CrawlJob, list[Any]]:
    job = factories.crawl_job(session, keywords=["cat", "dog"])
    rows = [
        factories.stored_image(
            session, env["s3"], env["bucket"], job, data, seed=n, keyword=("cat", "dog")[n % 2], extension=extension
        )
        for n, (extension, data) in enumerate(PLANTED.items())
    ]
    session.commit()
    return job, rows


@pytest.mark.parametrize(("fmt", "layout"), [("zip", "by_keyword"), ("tar", "hf_imagefolder")])
def test_the_archive_holds_resized_rgb_images_and_the_manifest_says_what_each_is(
    fmt: str, layout: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, rows = planted(session, env)
    export = export_job(session, job, fmt, layout=layout, **RESIZE)

    deliver(export_app, export.id)

    done = reload(session, export)
    assert done.status is JobStatus.COMPLETED, done.error_message
    files = members(fetch(env, done.storage_key or ""), fmt)
    pictures = {path: data for path, data in files.items() if path.endswith(".webp")}
    assert len(pictures) == len(rows) and not [path for path in files if path.endswith((".jpg", ".png", ".gif"))]
    for data in pictures.values():
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.mode, image.size) == ("WEBP", "RGB", (64, 64))
    manifest = manifest_rows(files["manifest.csv"].decode())
    tables = [manifest, jsonl(files["metadata.jsonl"].decode())] if layout == "hf_imagefolder" else [manifest]
    for table in tables:
        assert len(table) == len(rows)
        for row, image in zip(table, rows, strict=True):
            data = pictures[row["file_name"]]
            assert row["file_name"].startswith(f"{image.keyword}/{image.id}_") and row["file_name"].endswith(".webp")
            assert (str(row["sha256"]), str(row["file_size"])) == (image.sha256, str(image.file_size))  # original
            assert (str(row["output_width"]), str(row["output_height"]), row["output_format"]) == ("64", "64", "webp")
            assert str(row["output_file_size"]) == str(len(data))
            assert row["output_sha256"] == hashlib.sha256(data).hexdigest()
    assert all(path in files["ATTRIBUTION.txt"].decode() for path in pictures)
    items = session.scalars(select(ExportItem).where(ExportItem.export_job_id == export.id)).all()
    assert sorted(item.image_id for item in items) == [image.id for image in rows]


def test_an_exif_rotated_photo_comes_out_upright(session: Session, env: dict[str, Any], export_app: ModuleType) -> None:
    job, rows = planted(session, env)
    export = export_job(session, job, "zip", image_size=32, resize_mode="keep_ratio_largest", encode_format="png")

    deliver(export_app, export.id)

    files = members(fetch(env, reload(session, export).storage_key or ""), "zip")
    rotated = next(data for path, data in files.items() if path.startswith(f"{rows[4].id}_"))
    with Image.open(io.BytesIO(rotated)) as image:
        assert image.size == (18, 32)  # stored 160x90, shown 90x160


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_a_transformed_export_stopped_at_its_reserve_time_continues_into_the_same_bytes(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, _ = planted(session, env)
    whole = export_job(session, job, fmt, layout="hf_imagefolder", **RESIZE)  # same name: same attribution
    pieces = export_job(session, job, fmt, layout="hf_imagefolder", **RESIZE)
    asked = datetime(2026, 5, 6, 7, 8, 10, tzinfo=UTC)  # the extra files are dated by the job's creation
    session.execute(update(ExportJob).where(ExportJob.id.in_([whole.id, pieces.id])).values(created_at=asked))
    session.commit()
    deliver(export_app, whole.id)

    deliver(export_app, pieces.id, lambda_context("export", SHORT))
    assert reload(session, pieces).exported_images == 1
    assert drain(export_app, env["queues"]["export"], env["sqs"], lambda_context("export", SHORT)) == len(PLANTED)

    done = reload(session, pieces)
    assert done.status is JobStatus.COMPLETED, done.error_message
    expected, produced = fetch(env, reload(session, whole).storage_key or ""), fetch(env, done.storage_key or "")
    if fmt == "tar.gz":  # one gzip member per invocation; the tar inside is the same stream
        expected, produced = gzip.decompress(expected), gzip.decompress(produced)
    assert produced == expected


def test_an_image_that_does_not_decode_fails_the_export_readably(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, _ = planted(session, env)
    broken = factories.stored_image(session, env["s3"], env["bucket"], job, b"<html>not an image</html>", seed=99)
    session.commit()
    export = export_job(session, job, "tar", only_valid=False, **RESIZE)

    deliver(export_app, export.id)

    failed = reload(session, export)
    assert failed.status is JobStatus.FAILED and failed.checkpoint is None
    assert failed.error_message is not None
    assert failed.error_message.startswith(f"Image {broken.id} ({broken.storage_url}) could not be transformed:")
    assert uploads(env) == [] and objects(env) == []


def test_an_untransformed_export_lists_the_stored_files_as_its_outputs(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, rows = planted(session, env)
    archive, document = export_job(session, job, "zip"), export_job(session, job, "csv")

    deliver(export_app, archive.id)
    deliver(export_app, document.id)

    files = members(fetch(env, reload(session, archive).storage_key or ""), "zip")
    document_rows = manifest_rows(fetch(env, reload(session, document).storage_key or "").decode())
    for table in (manifest_rows(files["manifest.csv"].decode()), document_rows):
        for row, image in zip(table, rows, strict=True):
            assert files[row["file_name"]] == PLANTED[image.storage_url.rsplit(".", 1)[1]]
            outputs = [row[f"output_{name}"] for name in ("width", "height", "format", "file_size", "sha256")]
            assert outputs == [str(image.width), str(image.height), image.format, str(image.file_size), image.sha256]
    assert session.scalars(select(ExportItem)).all() == []


def test_splits_and_transforms_together(session: Session, env: dict[str, Any], export_app: ModuleType) -> None:
    job, rows = planted(session, env)
    splits = {"train": 0.5, "test": 0.5}
    export = export_job(session, job, "zip", layout="hf_imagefolder", splits=splits, **RESIZE)

    deliver(export_app, export.id)

    done = reload(session, export)
    assert done.status is JobStatus.COMPLETED, done.error_message
    files = members(fetch(env, done.storage_key or ""), "zip")
    pictures = {path: data for path, data in files.items() if path.endswith(".webp")}
    assert len(pictures) == len(rows) and {path.split("/")[0] for path in pictures} == set(splits)
    for split in splits:
        for row in jsonl(files[f"{split}/metadata.jsonl"].decode()):
            data = pictures[f"{split}/{row['file_name']}"]
            assert row["output_sha256"] == hashlib.sha256(data).hexdigest() and row["output_format"] == "webp"
