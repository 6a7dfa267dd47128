"""Exports with `splits`: the consumers' layouts, the counts in the response and the files, opened by Hugging
Face `datasets` and walked as torchvision's ImageFolder would, and resumed into the same files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler.exports import splits
from pixcrawler.models import Image, JobStatus
from pixcrawler.schemas.export import ExportJobResponse
from tests import factories
from tests.events import lambda_context
from tests.export.archive import members
from tests.export.conftest import deliver, drain, export_job, fetch, jsonl, manifest_rows, reload

pytestmark = pytest.mark.usefixtures("env")

FRACTIONS = {"train": 0.5, "validation": 0.25, "test": 0.25}
SEED = 11
SHORT = 1_000  # ms left: each invocation stops after one image


def labelled(session: Session, aws: dict[str, Any], count: int = 12, keywords: tuple[str, ...] = ("cat", "dog")) -> Any:
    job = factories.crawl_job(session, keywords=list(keywords))
    images = [
        factories.stored_image(session, aws["s3"], aws["bucket"], job, seed=n, keyword=keywords[n % len(keywords)])
        for n in range(count)
    ]
    session.commit()
    return job, images


def expected_plan(images: list[Image]) -> splits.SplitPlan:
    return splits.plan(lambda: ((image.sha256, image.keyword or "") for image in images), FRACTIONS, SEED)


def name_of(image: Image) -> str:
    return f"{image.id}_{image.filename}"


def finished(session: Session, app: ModuleType, job: Any, fmt: str, **options: Any) -> Any:
    export = export_job(session, job, fmt, splits=FRACTIONS, split_seed=SEED, **options)
    assert deliver(app, export.id) == {"batchItemFailures": []}
    export = reload(session, export)
    assert export.status is JobStatus.COMPLETED, export.error_message
    return export


def image_folder(root: Path) -> dict[str, dict[str, list[str]]]:
    """What torchvision's ImageFolder finds in each split folder: class folder -> image files (sorted)."""
    return {
        split.name: {
            label.name: sorted(item.name for item in label.iterdir() if item.suffix == ".jpg")
            for label in sorted(split.iterdir())
            if label.is_dir()
        }
        for split in sorted(root.iterdir())
        if split.is_dir()
    }


def extract(files: dict[str, bytes], root: Path) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_by_keyword_puts_an_image_folder_in_each_split_with_counts_in_response_and_files(
    session: Session, env: dict[str, Any], export_app: ModuleType, tmp_path: Path
) -> None:
    job, images = labelled(session, env)
    plan = expected_plan(images)

    export = finished(session, export_app, job, "zip", layout="by_keyword")

    files = members(fetch(env, export.storage_key or ""), "zip")
    where = {image.id: plan.split_of(image.sha256) for image in images}
    for image in images:
        assert files[f"{where[image.id]}/{image.keyword}/{name_of(image)}"] == fetch(env, image.storage_url)
    folders = image_folder(extract(files, tmp_path))
    counts = {split: {label: len(names) for label, names in labels.items()} for split, labels in folders.items()}
    assert counts == {split: per_label for split, per_label in plan.counts.items() if per_label}
    assert set(counts) == set(FRACTIONS) and all(set(labels) == {"cat", "dog"} for labels in counts.values())
    assert ExportJobResponse.model_validate(export).split_counts == plan.counts == export.split_counts
    assert json.loads(files["splits.json"]) == {"splits": FRACTIONS | {}, "split_seed": SEED, "counts": plan.counts}
    rows = manifest_rows(files["manifest.csv"].decode())
    assert list(rows[0])[:3] == ["file_name", "label", "split"]
    assert [(row["file_name"], row["split"]) for row in rows] == [
        (f"{where[image.id]}/{image.keyword}/{name_of(image)}", where[image.id]) for image in images
    ]


def test_hf_imagefolder_splits_load_with_datasets_as_those_splits(
    session: Session, env: dict[str, Any], export_app: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    job, images = labelled(session, env, count=16, keywords=("cat", "dog", "Red Dog"))
    plan = expected_plan(images)

    export = finished(session, export_app, job, "tar.gz", layout="hf_imagefolder")

    files = members(fetch(env, export.storage_key or ""), "tar.gz")
    for split in FRACTIONS:
        metadata = jsonl(files[f"{split}/metadata.jsonl"].decode())
        assert all(files[f"{split}/{row['file_name']}"] for row in metadata) and {row["split"] for row in metadata} == {
            split
        }
    assert "metadata.jsonl" not in files
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(extract(files, tmp_path / "export")), cache_dir=str(tmp_path / "cache")
    )
    assert set(loaded) == set(FRACTIONS)
    for split, per_label in plan.counts.items():
        rows = loaded[split]
        assert rows.num_rows == sum(per_label.values())
        labels: dict[str, int] = {}
        for label in rows["label"]:
            labels[label] = labels.get(label, 0) + 1
        assert labels == per_label
        sample = rows[0]["image"]
        assert sample.size == (256, 256) and sample.mode == "RGB"
    assert {row["sha256"] for split in loaded for row in loaded[split]} == {image.sha256 for image in images}


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_documents_carry_a_split_column_and_flat_archives_split_folders(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, images = labelled(session, env, count=6)
    plan = expected_plan(images)

    document = finished(session, export_app, job, fmt)
    archive = finished(session, export_app, job, "tar")

    text = fetch(env, document.storage_key or "").decode()
    rows = manifest_rows(text) if fmt == "csv" else json.loads(text) if fmt == "json" else jsonl(text)
    assert [(row["image_id"], row["split"], row["file_name"]) for row in rows] == [
        (
            str(image.id) if fmt == "csv" else image.id,
            plan.split_of(image.sha256),
            f"{plan.split_of(image.sha256)}/{name_of(image)}",
        )
        for image in images
    ]
    files = members(fetch(env, archive.storage_key or ""), "tar")
    assert {name for name in files if name.endswith(".jpg")} == {
        f"{plan.split_of(image.sha256)}/{name_of(image)}" for image in images
    }
    assert document.split_counts == archive.split_counts == plan.counts


@pytest.mark.parametrize(("fmt", "layout"), [("zip", "hf_imagefolder"), ("tar", "by_keyword"), ("jsonl", "flat")])
def test_an_interrupted_split_export_continues_into_the_same_files(
    fmt: str, layout: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, _ = labelled(session, env, count=6)
    whole = finished(session, export_app, job, fmt, layout=layout)
    pieces = export_job(session, job, fmt, layout=layout, splits=FRACTIONS, split_seed=SEED)

    deliver(export_app, pieces.id, lambda_context("export", SHORT))
    assert reload(session, pieces).exported_images == 1
    assert drain(export_app, env["queues"]["export"], env["sqs"], lambda_context("export", SHORT)) == 6

    done = reload(session, pieces)
    assert done.status is JobStatus.COMPLETED, done.error_message
    assert done.split_counts == whole.split_counts
    produced, expected = fetch(env, done.storage_key or ""), fetch(env, whole.storage_key or "")
    if fmt == "jsonl":  # links carry signing times; everything else is the same
        strip = re.compile(rb"https?://[^\",\s]+")
        assert strip.sub(b"", produced) == strip.sub(b"", expected)
    else:  # two jobs: croissant.json dates each by its own job, the rest is the same
        produced_files, expected_files = members(produced, fmt), members(expected, fmt)
        described = [json.loads(files.pop("croissant.json")) for files in (produced_files, expected_files)]
        for document in described:
            del document["datePublished"], document["citeAs"]
        assert described[0] == described[1]
        assert produced_files == expected_files
