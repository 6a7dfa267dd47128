"""Every bad request answers 4xx in the one error shape, and changes nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pixcrawler import db
from pixcrawler.models import ActivityLog, Profile, Project
from pixcrawler.settings import get_settings
from tests import events
from tests.api.conftest import Call, invoke


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/v1/projects", "{not json", 400, None),
        ("POST", "/v1/projects", "", 422, None),
        ("POST", "/v1/projects", {"name": "x", "owner": "me"}, 422, "owner"),
        ("POST", "/v1/projects", {"name": 5}, 422, "name"),
        ("POST", "/v1/projects", {"name": ""}, 422, "name"),
        ("POST", "/v1/projects", {"name": "x" * 201}, 422, "name"),
        ("POST", "/v1/projects", {"name": "x", "description": "d" * 5001}, 422, "description"),
        ("POST", "/v1/projects", [1, 2], 422, None),
        ("PATCH", "/v1/projects/1", {"status": "deleted"}, 422, "status"),
        ("GET", "/v1/projects/abc", None, 422, "path.project_id"),
        ("GET", "/v1/projects/0", None, 422, "path.project_id"),
        ("GET", "/v1/projects/99999999999999999999", None, 422, "path.project_id"),
        ("GET", "/v1/projects/-1", None, 422, "path.project_id"),
        ("GET", "/v1/projects", None, 422, "query.limit"),
        ("PATCH", "/v1/me", {"avatar_url": "javascript:alert(1)"}, 422, "avatar_url"),
    ],
)
def test_bad_input_is_4xx_in_the_error_shape(
    api: Call, session: Session, alice: uuid.UUID, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    project_id = api("POST", "/v1/projects", user=alice, body={"name": "keep"}).json["id"]
    assert project_id == 1
    before = session.scalar(select(func.count()).select_from(ActivityLog))
    query = {"limit": "101"} if field == "query.limit" else None
    reply = api(method, path, user=alice, body=body, query=query)
    assert reply.status == status, reply.text
    error = reply.error
    if field:
        assert field in [detail["field"] for detail in error["details"]]
    assert session.scalar(select(func.count()).select_from(ActivityLog)) == before
    project = session.get(Project, 1)
    assert project is not None and project.name == "keep" and project.status == "active"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nowhere", 404),
        ("GET", "/v2/projects", 404),
        ("PUT", "/v1/projects", 405),
        ("DELETE", "/v1/export-jobs", 405),
        ("POST", "/v1/images/1", 405),
    ],
)
def test_unknown_routes_and_methods(api: Call, alice: uuid.UUID, method: str, path: str, status: int) -> None:
    reply = api(method, path, user=alice)
    assert reply.status == status
    assert reply.error["code"] == ("not_found" if status == 404 else "method_not_allowed")
    if status == 405:
        assert reply.headers["Allow"]


@pytest.mark.parametrize(
    "claims",
    [None, {}, {"email": "x@example.com"}, {"sub": "not-a-uuid", "email": "x@example.com"}, {"sub": ""}],
)
def test_missing_or_bad_identity_is_401(api: Call, session: Session, claims: dict[str, str] | None) -> None:
    event = events.http_event("GET", "/v1/projects")
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    reply = invoke(event)
    assert reply.status == 401
    assert reply.error["code"] == "unauthenticated"
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert session.scalar(select(func.count()).select_from(Profile)) == 0


def test_email_owned_by_another_subject_is_409(api: Call, alice: uuid.UUID, bob: uuid.UUID) -> None:
    api("GET", "/v1/me", user=alice, email="shared@example.com")
    reply = api("GET", "/v1/me", user=bob, email="shared@example.com")
    assert reply.status == 409
    assert reply.error["code"] == "conflict"


def test_health_needs_no_token(api: Call) -> None:
    reply = api("GET", "/v1/health")
    assert reply.status == 200
    assert reply.json == {"status": "ok", "database": "ok"}


def test_health_reports_an_unreachable_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+pg8000://postgres@/postgres?unix_sock={tmp_path}/.s.PGSQL.5432")
    get_settings.cache_clear()
    db.reset()
    try:
        reply = invoke(events.http_event("GET", "/v1/health"))
        assert reply.status == 503
        assert reply.error["code"] == "unavailable"
        assert reply.headers["Retry-After"] == "5"
        assert invoke(events.http_event("GET", "/v1/projects", user=uuid.uuid4())).status == 503
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        db.reset()


def test_a_value_the_database_refuses_is_400(api: Call, session: Session) -> None:
    reply = api("GET", "/v1/me", user=uuid.uuid4(), email="x" * 400 + "@example.com")
    assert reply.status == 400
    assert reply.error["code"] == "invalid_value"
    assert session.scalar(select(func.count()).select_from(Profile)) == 0
