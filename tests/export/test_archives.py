"""Archives hold every image byte for byte, under the chosen layout, with manifest and attribution."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pixcrawler import links
from pixcrawler.models import ActivityLog, JobStatus, ValidationJob
from pixcrawler_local import samples
from tests import factories
from tests.export.archive import members
from tests.export.conftest import deliver, export_job, fetch, jsonl, manifest_rows, reload

pytestmark = pytest.mark.usefixtures("env")


def stored_set(session: Session, aws: dict[str, Any], count: int = 3, keywords: tuple[str, ...] = ("cat",)) -> Any:
    job = factories.crawl_job(session, keywords=list(keywords))
    images = [
        factories.stored_image(
            session, aws["s3"], aws["bucket"], job, seed=n, keyword=keywords[n % len(keywords)], creator=f"Creator {n}"
        )
        for n in range(count)
    ]
    session.commit()
    return job, images


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
def test_flat_archive_holds_every_image_manifest_and_attribution(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, images = stored_set(session, env, count=4)
    export = export_job(session, job, fmt)

    assert deliver(export_app, export.id) == {"batchItemFailures": []}

    export = reload(session, export)
    assert export.status is JobStatus.COMPLETED, export.error_message
    assert (export.total_images, export.exported_images, export.progress) == (4, 4, 100)
    assert export.storage_key is not None and export.storage_key.endswith(f"/my-cats.{fmt}")
    assert export.storage_key.startswith(f"exports/{job.project_id}/{export.id}-")
    assert export.started_at is not None and export.completed_at is not None and export.checkpoint is None
    data = fetch(env, export.storage_key)
    assert export.file_size == len(data)
    files = members(data, fmt)
    for image in images:
        assert files[f"{image.id}_{image.filename.removesuffix('.jpg')}.jpg"] == fetch(env, image.storage_url)
    assert set(files) == {f"{image.id}_{image.filename}" for image in images} | {
        "manifest.csv",
        "ATTRIBUTION.txt",
        "croissant.json",
    }

    rows = manifest_rows(files["manifest.csv"].decode())
    assert [row["file_name"] for row in rows] == [f"{image.id}_{image.filename}" for image in images]
    for row, image in zip(rows, images, strict=True):
        assert row["sha256"] == image.sha256 and row["label"] == "cat" and row["creator"] == image.creator
        assert row["original_url"] == image.original_url and row["license"] == "cc-by"
        assert (row["width"], row["height"], row["file_size"]) == ("256", "256", str(image.file_size))
    attribution = files["ATTRIBUTION.txt"].decode()
    for image in images:
        block = attribution.split(f"\n{image.id}_{image.filename}\n", 1)[1].split("\n\n", 1)[0]
        assert f"Creator: {image.creator}" in block
        assert "License: cc-by (https://creativecommons.org/licenses/by/4.0/)" in block

    assert links.verify(export.download_url.rsplit("/", 1)[1]) == export.id  # type: ignore[union-attr]
    log = session.scalar(select(ActivityLog).where(ActivityLog.resource_id == str(export.id)))
    assert log is not None and log.action == "export_job.completed" and log.user_id == job.project.user_id


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_by_keyword_layout_makes_one_folder_per_label(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, images = stored_set(session, env, count=6, keywords=("cat", "Red Dog", "red dog"))
    export = export_job(session, job, fmt, layout="by_keyword", include_manifest=False)

    deliver(export_app, export.id)

    files = members(fetch(env, reload(session, export).storage_key or ""), fmt)
    folders = {"Red Dog": "Red Dog", "cat": "cat", "red dog": "red dog-2"}
    for image in images:
        assert files[f"{folders[image.keyword or '']}/{image.id}_{image.filename}"] == fetch(env, image.storage_url)
    assert "manifest.csv" not in files and "ATTRIBUTION.txt" in files


def test_hf_imagefolder_layout_writes_metadata_beside_the_files(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, images = stored_set(session, env, count=4, keywords=("cat", "dog"))
    export = export_job(session, job, "zip", layout="hf_imagefolder")

    deliver(export_app, export.id)

    files = members(fetch(env, reload(session, export).storage_key or ""), "zip")
    metadata = jsonl(files["metadata.jsonl"].decode())
    assert [(row["file_name"], row["label"]) for row in metadata] == [
        (f"{image.keyword}/{image.id}_{image.filename}", image.keyword) for image in images
    ]
    assert all(row["file_name"] in files for row in metadata)
    assert metadata[0]["license"] == "cc-by" and metadata[0]["sha256"] == images[0].sha256


def test_hostile_file_names_are_sanitised_and_never_collide(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job = factories.crawl_job(session, keywords=["../../etc", "cat"])
    names = ["../../etc/passwd.jpg", "/abs/olute.jpg", "C:\\win\\evil.jpg", "cat.jpg", "CAT.jpg", "CON.jpg", ""]
    images = [
        factories.stored_image(
            session, env["s3"], env["bucket"], job, seed=n, filename=name, keyword="../../etc" if n == 0 else "cat"
        )
        for n, name in enumerate(names)
    ]
    session.commit()
    export = export_job(session, job, "tar", layout="by_keyword")

    deliver(export_app, export.id)

    files = members(fetch(env, reload(session, export).storage_key or ""), "tar")
    paths = [path for path in files if path not in ("manifest.csv", "ATTRIBUTION.txt", "croissant.json")]
    assert len(paths) == len(images) == len({path.casefold() for path in paths})
    for path in paths:
        assert not path.startswith("/") and ".." not in path.split("/") and "\\" not in path
    assert sorted(paths) == sorted(
        [
            f"etc/{images[0].id}_passwd.jpg",
            f"cat/{images[1].id}_olute.jpg",
            f"cat/{images[2].id}_evil.jpg",
            f"cat/{images[3].id}_cat.jpg",
            f"cat/{images[4].id}_CAT.jpg",
            f"cat/{images[5].id}__CON.jpg",
            f"cat/{images[6].id}_image.jpg",
        ]
    )


@pytest.mark.parametrize(
    ("only_valid", "validated", "expected"),
    [
        (None, False, {True, False, None}),
        (None, True, {True}),
        (False, True, {True, False, None}),
        (True, False, {True}),
    ],
)
def test_only_valid_defaults_to_true_once_a_validation_completed(
    only_valid: bool | None,
    validated: bool,
    expected: set[bool | None],
    session: Session,
    env: dict[str, Any],
    export_app: ModuleType,
) -> None:
    job = factories.crawl_job(session)
    for n, valid in enumerate([True, False, None]):
        factories.stored_image(session, env["s3"], env["bucket"], job, seed=n, is_valid=valid, title=str(valid))
    if validated:
        session.add(ValidationJob(crawl_job_id=job.id, name="v", status=JobStatus.COMPLETED))
    export = export_job(session, job, "jsonl", only_valid=only_valid)

    deliver(export_app, export.id)

    rows = jsonl(fetch(env, reload(session, export).storage_key or "").decode())
    assert {row["title"] for row in rows} == {str(value) for value in expected}
    assert reload(session, export).exported_images == len(expected)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_manifest_exports_list_storage_keys_and_links(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    import csv
    import io
    import json
    from urllib.parse import parse_qs, urlsplit

    job, images = stored_set(session, env, count=3)
    export = export_job(session, job, fmt, link_lifetime_hours=48)

    deliver(export_app, export.id)

    text = fetch(env, reload(session, export).storage_key or "").decode()
    rows: list[dict[str, Any]] = {
        "csv": lambda: list(csv.DictReader(io.StringIO(text))),
        "json": lambda: json.loads(text),
        "jsonl": lambda: jsonl(text),
    }[fmt]()
    assert [str(row["image_id"]) for row in rows] == [str(image.id) for image in images]
    for row, image in zip(rows, images, strict=True):
        assert row["storage_key"] == image.storage_url and row["sha256"] == image.sha256
        query = parse_qs(urlsplit(row["url"]).query)
        assert query["X-Amz-Expires"] == [str(48 * 3600)]
        assert urlsplit(row["url"]).path.endswith(image.storage_url)


def test_an_empty_selection_fails_with_a_readable_message(
    session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job = factories.crawl_job(session)
    factories.stored_image(session, env["s3"], env["bucket"], job, data=samples.jpeg(1), is_valid=False)
    export = export_job(session, job, "zip", only_valid=True)

    deliver(export_app, export.id)

    export = reload(session, export)
    assert export.status is JobStatus.FAILED
    assert export.error_message == f"Crawl job {job.id} has no valid images to export."
    assert env["s3"].list_multipart_uploads(Bucket=env["bucket"]).get("Uploads", []) == []
