"""Whatever bytes a request carries, the API answers a 4xx in its one error shape, never a 500, and stores
nothing: bodies are read once, for every route that takes one, by `pixcrawler.api.body`."""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pixcrawler.models import ActivityLog, Project
from tests import events
from tests.api.conftest import Call, Reply, invoke

PROJECT = b'{"name": "Caf\xc3\xa9 birds"}'


def send(
    user: uuid.UUID,
    body: bytes | str,
    content_type: str | None = "application/json",
    *,
    base64_encoded: bool = False,
    method: str = "POST",
    path: str = "/v1/projects",
) -> Reply:
    """The event API Gateway sends: text bodies as they are, binary ones base64-encoded (or raw text, when a
    test says it is base64 although it is not)."""
    if isinstance(body, bytes):
        body, base64_encoded = base64.b64encode(body).decode(), True
    event = events.http_event(method, path, user=user, body=body)
    del event["headers"]["content-type"]
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    event["isBase64Encoded"] = base64_encoded
    return invoke(event)


def stored(session: Session) -> tuple[int, int]:
    """Projects and activity rows; the read ends its transaction, freeing the one pooled connection."""
    with session.begin():
        projects = session.scalar(select(func.count()).select_from(Project)) or 0
        return projects, session.scalar(select(func.count()).select_from(ActivityLog)) or 0


@pytest.fixture
def user(api: Call, alice: uuid.UUID) -> uuid.UUID:
    """A known caller with one project, committed, so refusals can be shown to change nothing."""
    assert api("POST", "/v1/projects", user=alice, body={"name": "keep"}).status == 201
    return alice


def test_invalid_utf8_is_400_naming_the_encoding(session: Session, user: uuid.UUID) -> None:
    before = stored(session)
    reply = send(user, b'{"name": "\xff\xfe birds"}')
    assert reply.status == 400, reply.text
    error = reply.error
    assert error["code"] == "invalid_encoding"
    assert "utf-8" in error["message"] and "byte 10" in error["message"]
    assert error["details"] == [{"field": "body", "message": error["message"]}]
    assert stored(session) == before


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json; charset=latin-1", PROJECT.decode().encode("latin-1")),
        ('application/json; charset="ISO-8859-1"', PROJECT.decode().encode("latin-1")),
        ("application/json; charset=utf-16", PROJECT.decode().encode("utf-16")),
        ("application/json; charset=utf-8", PROJECT),
        ("Application/JSON", PROJECT),
        ("application/merge-patch+json", PROJECT),
    ],
)
def test_json_in_a_declared_charset_is_decoded_by_it(
    session: Session, user: uuid.UUID, content_type: str, body: bytes
) -> None:
    reply = send(user, body, content_type)
    assert reply.status == 201, reply.text
    assert reply.json["name"] == "Café birds"
    with session.begin():
        assert session.get(Project, reply.json["id"]).name == "Café birds"  # type: ignore[union-attr]


@pytest.mark.parametrize("charset", ["klingon", "base64", "rot13", "undefined"])
def test_a_charset_that_is_no_text_encoding_is_415(session: Session, user: uuid.UUID, charset: str) -> None:
    before = stored(session)
    for body in (PROJECT, PROJECT.decode()):  # base64-encoded by the gateway, or passed on as text
        reply = send(user, body, f"application/json; charset={charset}")
        assert reply.status == 415, reply.text
        assert reply.error["code"] == "unsupported_media_type"
        assert charset in reply.error["message"] and "application/json" in reply.error["message"]
    assert stored(session) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        None,
        "",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonp",
        "json",
    ],
)
def test_a_body_not_sent_as_json_is_415_naming_the_accepted_type(
    session: Session, user: uuid.UUID, content_type: str | None
) -> None:
    before = stored(session)
    reply = send(user, '{"name": "x"}', content_type)
    assert reply.status == 415, reply.text
    error = reply.error
    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert error["details"][0]["field"] == "header.Content-Type"
    assert stored(session) == before


def test_every_route_with_a_body_refuses_other_media_types(api: Call, user: uuid.UUID) -> None:
    spec = api("GET", "/v1/openapi.json").json
    routes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(routes) == 6
    for method, path in routes:
        reply = send(user, '{"name": "x"}', "text/plain", method=method, path=path)
        assert (reply.status, reply.error["code"]) == (415, "unsupported_media_type"), (method, path, reply.text)


def test_no_body_is_a_missing_field_whatever_the_content_type(user: uuid.UUID) -> None:
    for content_type in ("text/plain", None):
        reply = send(user, "", content_type)
        assert reply.status == 422, reply.text
        assert reply.error["details"] == [{"field": "body", "message": "Field required"}]


@pytest.mark.parametrize(
    "document",
    [
        "[" * 5000 + "]" * 5000,
        '{"name": "x", "description": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"a":' * 3000 + "1" + "}" * 3000,
    ],
)
def test_json_nested_thousands_deep_is_400(session: Session, user: uuid.UUID, document: str) -> None:
    before = stored(session)
    reply = send(user, document)
    assert reply.status == 400, reply.text
    assert reply.error["code"] == "malformed_json"
    assert "too deeply" in reply.error["message"]
    assert stored(session) == before


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ('{"name": "x",\n "description": }', "line 2, column 17"),
        ('{"name": "x", "description": ' + "1" * 5000 + "}", "4300"),
        ('{"name": "x", "description": NaN}', "NaN is not a JSON value"),
        ('{"name": "x", "description": -Infinity}', "-Infinity is not a JSON value"),
    ],
)
def test_malformed_json_is_400_naming_the_problem(session: Session, user: uuid.UUID, document: str, named: str) -> None:
    before = stored(session)
    reply = send(user, document)
    assert reply.status == 400, reply.text
    assert reply.error["code"] == "malformed_json"
    assert named in reply.error["message"]
    assert stored(session) == before


@pytest.mark.parametrize("body", ["!!!not base64", "eyJuYW1lIjogIngifQ", "eyJuYW1lIjo\ngIngifQ==", "é"])
def test_a_base64_flagged_body_that_is_not_base64_is_400(session: Session, user: uuid.UUID, body: str) -> None:
    before = stored(session)
    reply = send(user, body, base64_encoded=True)
    assert reply.status == 400, reply.text
    assert reply.error["code"] == "invalid_encoding"
    assert "base64" in reply.error["message"]
    assert stored(session) == before


@pytest.mark.parametrize(
    "token", ["abc.é", "abc.%C3%A9", "é.abc", "abc", ".abc", "abc.", "a.b.c", "abc.def\n", "abc def.x", "..."]
)
def test_a_download_token_of_any_characters_is_403(api: Call, token: str) -> None:
    reply = invoke(events.http_event("GET", f"/v1/downloads/{token}"))
    assert reply.status == 403, reply.text
    assert reply.error["code"] == "invalid_link"
