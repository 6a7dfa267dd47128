"""What a crawl job's prefix keeps when the job ends: exactly its rows' objects, compared with the rows a listing
page at a time, whatever page a thumbnail falls on apart from its original."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler import object_keys
from pixcrawler.crawl import worker
from pixcrawler.models import Image
from pixcrawler.providers import Work
from pixcrawler_local import samples
from tests import factories
from tests.crawl.conftest import bucket_keys, objects_of


def claim_of(job_id: int, project_id: int) -> worker.Claim:
    return worker.Claim(
        job_id=job_id,
        chunk_id=0,
        project_id=project_id,
        provider="urls",
        work=Work(keyword="cat", page=1, page_size=1),
        room=0,
        stop_by=0.0,
        respect_robots=False,
        deferrals=0,
        pending=None,
    )


@pytest.mark.parametrize("page", [1, 2, 3, 1000])
def test_a_job_that_ends_keeps_exactly_its_rows_objects(
    crawl_env: dict[str, Any], session: Session, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    monkeypatch.setattr(worker, "ORPHAN_PAGE", page)
    s3, bucket = crawl_env["s3"], crawl_env["bucket"]
    job = factories.crawl_job(session)
    neighbour = factories.crawl_job(session, job.project)
    photos = [samples.jpeg(seed, 512, 384) for seed in (1, 2)]
    rows = [
        *(factories.stored_image(session, s3, bucket, job, photo, ingested=True) for photo in photos),
        factories.stored_image(session, s3, bucket, job, samples.jpeg(3), ingested=True),  # its own thumbnail
        factories.stored_image(session, s3, bucket, job, samples.jpeg(4, 300, 200)),  # from before thumbnails
    ]
    others = [factories.stored_image(session, s3, bucket, neighbour, samples.jpeg(5, 512, 384), ingested=True)]
    session.commit()
    assert {row.thumbnail_format for row in rows} == {"jpeg", "original", None}

    lost = object_keys.image_key(job.project_id, job.id, "cat", "f" * 64, "jpg")  # uploaded, never committed
    orphans = [
        lost,
        object_keys.thumbnail_key(lost, "jpeg"),
        object_keys.thumbnail_key(lost, "webp"),
        object_keys.thumbnail_key(rows[2].storage_url, "jpeg"),  # a preview its row, its own thumbnail, never uses
        object_keys.thumbnail_key(rows[3].storage_url, "webp"),
    ]
    for key in orphans:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert set(orphans) < set(bucket_keys(crawl_env))

    worker._delete_job_orphans(claim_of(job.id, job.project_id))

    assert bucket_keys(crawl_env) == sorted([*objects_of(rows), *objects_of(others)])
    assert session.query(Image).count() == len(rows) + len(others)


def test_an_image_and_its_thumbnails_are_named_by_its_sha256() -> None:
    digest = "a" * 64
    key = object_keys.image_key(1, 2, "cat.and.dog", digest, "png")
    named = [key, *(object_keys.thumbnail_key(key, name) for name in [*object_keys.THUMBNAIL_EXTENSIONS, "original"])]
    assert {object_keys.sha256_of(name) for name in named} == {digest}
