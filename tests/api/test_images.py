"""Images through the API: filtered pages, view links, deletion of row and object."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from pixcrawler.models import ActivityLog, CrawlJob, Image
from pixcrawler_local import samples
from tests import factories
from tests.api.conftest import Call


def _job_with_images(session: Session, aws: dict[str, Any], user: uuid.UUID) -> tuple[int, list[int]]:
    job = factories.crawl_job(
        session, factories.project(session, factories.profile(session, id=user)), downloaded_images=4, valid_images=1
    )
    validity = [True, False, None, None]
    ids = [
        factories.stored_image(
            session,
            aws["s3"],
            aws["bucket"],
            job,
            seed=n,
            data=samples.jpeg(n, 640, 480) if n == 0 else None,  # over 256 px: a preview is encoded and stored
            keyword="dog" if n == 3 else "cat",
            is_valid=validity[n],
            ingested=n == 0,
        ).id
        for n in range(4)
    ]
    return job.id, ids


def test_list_filters_by_keyword_and_validity(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job_id, ids = _job_with_images(session, aws, alice)

    def listed(**query: str) -> list[int]:
        return [
            item["id"] for item in api("GET", f"/v1/crawl-jobs/{job_id}/images", user=alice, query=query).json["items"]
        ]

    assert listed() == ids
    items = api("GET", f"/v1/crawl-jobs/{job_id}/images", user=alice).json["items"]
    assert [item["thumbnail_url"] is not None for item in items] == [True, False, False, False]
    assert requests.get(items[0]["thumbnail_url"], timeout=10).content[:2] == b"\xff\xd8"
    assert listed(keyword="dog") == [ids[3]]
    assert listed(validity="valid") == [ids[0]]
    assert listed(validity="invalid") == [ids[1]]
    assert listed(validity="unvalidated") == [ids[2], ids[3]]
    assert listed(keyword="cat", validity="unvalidated") == [ids[2]]
    page = api("GET", f"/v1/crawl-jobs/{job_id}/images", user=alice, query={"limit": "3"}).json
    rest = api("GET", f"/v1/crawl-jobs/{job_id}/images", user=alice, query={"cursor": page["next_cursor"]}).json
    assert [item["id"] for item in page["items"] + rest["items"]] == ids and rest["next_cursor"] is None
    bad = api("GET", f"/v1/crawl-jobs/{job_id}/images", user=alice, query={"validity": "maybe"})
    assert bad.status == 422 and bad.error["details"][0]["field"] == "query.validity"


def test_get_image_has_a_short_lived_view_url(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job_id, ids = _job_with_images(session, aws, alice)
    reply = api("GET", f"/v1/images/{ids[0]}", user=alice)
    assert reply.status == 200
    body = reply.json
    assert body["license"] == "cc-by" and body["crawl_job_id"] == job_id
    query = parse_qs(urlsplit(body["view_url"]).query)
    assert query["X-Amz-Expires"] == ["900"]
    key = session.get(Image, ids[0]).storage_url  # type: ignore[union-attr]
    assert urlsplit(body["view_url"]).path.endswith(key)
    assert requests.get(body["view_url"], timeout=10).content[:2] == b"\xff\xd8"
    thumbnail = urlsplit(body["thumbnail_url"])
    assert thumbnail.path.endswith(f"{key}.thumb.jpg") and parse_qs(thumbnail.query)["X-Amz-Expires"] == ["900"]
    assert requests.get(body["thumbnail_url"], timeout=10).content[:2] == b"\xff\xd8"
    assert api("GET", f"/v1/images/{ids[1]}", user=alice).json["thumbnail_url"] is None


def test_an_original_that_is_its_own_thumbnail_is_one_object_and_its_thumbnail_link(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job = factories.crawl_job(session, factories.project(session, factories.profile(session, id=alice)))
    small = samples.jpeg(7, 200, 150)
    image = factories.stored_image(session, aws["s3"], aws["bucket"], job, data=small, ingested=True)
    key = image.storage_url
    assert image.thumbnail_format == "original"
    assert aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=key)["KeyCount"] == 1

    body = api("GET", f"/v1/images/{image.id}", user=alice).json

    assert urlsplit(body["thumbnail_url"]).path.endswith(key)
    assert requests.get(body["thumbnail_url"], timeout=10).content == small
    assert api("DELETE", f"/v1/images/{image.id}", user=alice).status == 204
    assert aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=key)["KeyCount"] == 0


def test_delete_image_removes_row_object_and_counts(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    job_id, ids = _job_with_images(session, aws, alice)
    key = session.get(Image, ids[0]).storage_url  # type: ignore[union-attr]
    assert aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=key).get("KeyCount") == 2  # and its thumbnail
    assert api("DELETE", f"/v1/images/{ids[0]}", user=alice).status == 204
    assert session.get(Image, ids[0]) is None
    assert aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=key).get("KeyCount") == 0
    job = session.get(CrawlJob, job_id)
    assert job is not None and (job.downloaded_images, job.valid_images) == (3, 0)
    assert session.scalars(select(ActivityLog.action)).all() == ["image.deleted"]
    assert api("DELETE", f"/v1/images/{ids[0]}", user=alice).status == 404
