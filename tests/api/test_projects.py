"""Projects through the API: rows, activity, pagination, and deletion of every stored object."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pixcrawler.models import ActivityLog, CrawlJob, Image, Profile, Project
from tests import factories
from tests.api.conftest import Call


def test_first_request_creates_the_profile(api: Call, session: Session, alice: uuid.UUID) -> None:
    reply = api("GET", "/v1/me", user=alice, email="alice@example.com")
    assert reply.status == 200
    assert reply.json["email"] == "alice@example.com"
    assert session.get(Profile, alice) is not None
    assert api("GET", "/v1/me", user=alice).status == 200
    assert session.scalar(select(func.count()).select_from(Profile)) == 1


def test_patch_me_updates_and_logs(api: Call, session: Session, alice: uuid.UUID) -> None:
    reply = api("PATCH", "/v1/me", user=alice, body={"full_name": "Alice", "avatar_url": "https://img.example/a.png"})
    assert reply.status == 200
    assert reply.json["full_name"] == "Alice"
    assert session.get(Profile, alice).avatar_url == "https://img.example/a.png"  # type: ignore[union-attr]
    assert session.scalars(select(ActivityLog.action)).all() == ["profile.updated"]


def test_create_get_update_project(api: Call, session: Session, alice: uuid.UUID) -> None:
    created = api("POST", "/v1/projects", user=alice, body={"name": "  Cats  ", "description": "felines"})
    assert created.status == 201
    project_id = created.json["id"]
    assert created.json["name"] == "Cats"
    detail = api("GET", f"/v1/projects/{project_id}", user=alice)
    assert detail.json["crawl_jobs"] == []
    updated = api("PATCH", f"/v1/projects/{project_id}", user=alice, body={"status": "archived"})
    assert updated.status == 200
    assert updated.json["status"] == "archived"
    assert updated.json["name"] == "Cats"
    row = session.get(Project, project_id)
    assert row is not None and row.status == "archived" and row.user_id == alice
    actions = session.scalars(select(ActivityLog.action).order_by(ActivityLog.id)).all()
    assert actions == ["project.created", "project.updated"]


def test_patch_cannot_null_a_required_field(api: Call, session: Session, alice: uuid.UUID) -> None:
    project_id = api("POST", "/v1/projects", user=alice, body={"name": "keep"}).json["id"]
    reply = api("PATCH", f"/v1/projects/{project_id}", user=alice, body={"name": None})
    assert reply.status == 422
    assert reply.error["details"][0]["field"] == "name"
    assert session.get(Project, project_id).name == "keep"  # type: ignore[union-attr]


def test_list_paginates_by_opaque_cursor_and_filters_status(api: Call, alice: uuid.UUID, bob: uuid.UUID) -> None:
    for n in range(5):
        api("POST", "/v1/projects", user=alice, body={"name": f"p{n}"})
    api("POST", "/v1/projects", user=bob, body={"name": "bob's"})
    first = api("GET", "/v1/projects", user=alice, query={"limit": "2"}).json
    assert [item["name"] for item in first["items"]] == ["p0", "p1"]
    names, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api("GET", "/v1/projects", user=alice, query=query).json
        names += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == [f"p{n}" for n in range(5)]
    api("PATCH", f"/v1/projects/{first['items'][0]['id']}", user=alice, body={"status": "archived"})
    archived = api("GET", "/v1/projects", user=alice, query={"status": "archived"}).json["items"]
    assert [item["name"] for item in archived] == ["p0"]


def test_garbage_cursor_is_a_400(api: Call, alice: uuid.UUID) -> None:
    for cursor in ("garbage!", "bm9wZQ", "", "azE6eA"):
        reply = api("GET", "/v1/projects", user=alice, query={"cursor": cursor})
        assert reply.status == 400, cursor
        assert reply.error["code"] == "invalid_cursor"
        assert reply.error["details"][0]["field"] == "cursor"


def test_delete_project_removes_rows_and_objects(
    api: Call, session: Session, aws: dict[str, Any], alice: uuid.UUID
) -> None:
    owner = factories.profile(session, id=alice)
    doomed = factories.project(session, owner)
    kept = factories.project(session, owner)
    doomed_job = factories.crawl_job(session, doomed)
    kept_job = factories.crawl_job(session, kept)
    for seed in range(3):
        factories.stored_image(session, aws["s3"], aws["bucket"], doomed_job, seed=seed)
    factories.stored_image(session, aws["s3"], aws["bucket"], kept_job, seed=9)
    aws["s3"].put_object(Bucket=aws["bucket"], Key=f"exports/{doomed.id}/1-abc/data.zip", Body=b"zip")
    doomed_id, kept_id = doomed.id, kept.id

    reply = api("DELETE", f"/v1/projects/{doomed_id}", user=alice)
    assert reply.status == 204
    assert session.get(Project, doomed_id) is None
    assert session.scalar(select(func.count()).select_from(CrawlJob)) == 1
    assert session.scalar(select(func.count()).select_from(Image)) == 1
    keys = [item["Key"] for item in aws["s3"].list_objects_v2(Bucket=aws["bucket"]).get("Contents", [])]
    assert keys and all(key.startswith(f"projects/{kept_id}/") for key in keys)
    log = session.scalars(select(ActivityLog).where(ActivityLog.action == "project.deleted")).one()
    assert log.resource_id == str(doomed_id) and log.metadata_["objects_removed"] == 4
    assert api("GET", f"/v1/projects/{doomed_id}", user=alice).status == 404


def test_a_project_shows_its_newest_crawl_jobs_and_how_many_it_has(
    api: Call, session: Session, alice: uuid.UUID
) -> None:
    owner = session.get_one(Profile, api("GET", "/v1/me", user=alice).json["id"])
    project = factories.project(session, owner)
    jobs = [factories.crawl_job(session, project, name=f"crawl {n}").id for n in range(25)]
    session.commit()
    detail = api("GET", f"/v1/projects/{project.id}", user=alice).json
    assert detail["crawl_job_count"] == 25
    assert [job["id"] for job in detail["crawl_jobs"]] == jobs[::-1][:20]
