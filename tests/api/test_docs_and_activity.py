"""The OpenAPI document and Swagger page come from the routes themselves and need no internet; the activity
log lists a user's changes newest first."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from pixcrawler import db
from pixcrawler.settings import get_settings
from tests import events
from tests.api.conftest import Call, invoke

EXPECTED_PATHS = {
    "/v1/health": {"get"},
    "/v1/me": {"get", "patch"},
    "/v1/projects": {"get", "post"},
    "/v1/projects/{project_id}": {"get", "patch", "delete"},
    "/v1/projects/{project_id}/crawl-jobs": {"get", "post"},
    "/v1/crawl-jobs/{crawl_job_id}": {"get"},
    "/v1/crawl-jobs/{crawl_job_id}/cancel": {"post"},
    "/v1/crawl-jobs/{crawl_job_id}/retry": {"post"},
    "/v1/crawl-jobs/{crawl_job_id}/images": {"get"},
    "/v1/images/{image_id}": {"get", "delete"},
    "/v1/crawl-jobs/{crawl_job_id}/validation-jobs": {"get", "post"},
    "/v1/validation-jobs/{validation_job_id}": {"get"},
    "/v1/crawl-jobs/{crawl_job_id}/export-jobs": {"post"},
    "/v1/export-jobs": {"get"},
    "/v1/export-jobs/{export_job_id}": {"get"},
    "/v1/export-jobs/{export_job_id}/download-url": {"post"},
    "/v1/downloads/{token}": {"get"},
    "/v1/activity": {"get"},
}


def test_openapi_lists_every_route_with_its_schemas(api: Call) -> None:
    reply = api("GET", "/v1/openapi.json")
    assert reply.status == 200
    spec = reply.json
    assert {path: set(ops) for path, ops in spec["paths"].items()} == EXPECTED_PATHS
    schemas = spec["components"]["schemas"]
    assert {"CrawlJobCreate", "ValidationRules", "ExportOptions", "ProjectResponse"} <= set(schemas)
    assert schemas["CrawlJobCreate"]["properties"]["max_images"]["maximum"] == 100_000
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_openapi_declares_every_answer_of_every_operation(api: Call) -> None:
    """Success statuses as sent, no body where none is sent, every error status in the one error shape, and the
    operations the gateway serves without a token marked public. (The fuzz in test_fuzz.py holds the API to it.)"""
    spec = api("GET", "/v1/openapi.json").json
    assert set(spec["components"]["schemas"]) >= {"Error", "ErrorBody", "ErrorDetail"}
    assert not {"HTTPValidationError", "ValidationError"} & set(spec["components"]["schemas"])
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    successes = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            public = operation.get("security") == []
            assert public == (path in {"/v1/health", "/v1/downloads/{token}"})
            responses = operation["responses"]
            assert ({"401", "409"} <= set(responses)) != public
            assert ("415" in responses) == ("requestBody" in operation)
            assert ("404" in responses) == ("{" in path)
            assert all(answer["content"] == error for status, answer in responses.items() if int(status) >= 400)
            (success,) = [status for status in responses if int(status) < 400]
            successes[f"{method.upper()} {path}"] = success
            assert ("content" in responses[success]) == (success not in ("204", "302"))
    assert {operation: status for operation, status in successes.items() if status != "200"} == {
        "POST /v1/projects": "201",
        "DELETE /v1/projects/{project_id}": "204",
        "POST /v1/projects/{project_id}/crawl-jobs": "202",
        "POST /v1/crawl-jobs/{crawl_job_id}/retry": "202",
        "DELETE /v1/images/{image_id}": "204",
        "POST /v1/crawl-jobs/{crawl_job_id}/validation-jobs": "202",
        "POST /v1/crawl-jobs/{crawl_job_id}/export-jobs": "202",
        "GET /v1/downloads/{token}": "302",
    }


def test_docs_page_is_self_contained(api: Call) -> None:
    reply = api("GET", "/v1/docs")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    html = reply.text
    assert "SwaggerUIBundle" in html and '"/v1/projects"' in html
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(https?://[^"' >]+)""", html)
    assert external == []
    assert not re.search(r"""<(?:script|link)[^>]+(?:src|href)\s*=""", html)


def test_docs_need_no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    db.reset()
    try:
        assert invoke(events.http_event("GET", "/v1/docs")).status == 200
        raw = invoke(events.http_event("GET", "/v1/docs", query={"format": "json"}))
        assert raw.json["info"]["title"] == "PixCrawler API"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        db.reset()


def test_activity_is_newest_first_and_paginated(api: Call, aws: dict[str, Any], alice: uuid.UUID) -> None:
    project_id = api("POST", "/v1/projects", user=alice, body={"name": "a"}).json["id"]
    api("PATCH", f"/v1/projects/{project_id}", user=alice, body={"name": "b"})
    api("DELETE", f"/v1/projects/{project_id}", user=alice)
    first = api("GET", "/v1/activity", user=alice, query={"limit": "2"}).json
    assert [item["action"] for item in first["items"]] == ["project.deleted", "project.updated"]
    assert first["items"][0]["resource_type"] == "project"
    assert first["items"][0]["resource_id"] == str(project_id)
    assert first["items"][1]["metadata"] == {"fields": ["name"]}
    rest = api("GET", "/v1/activity", user=alice, query={"cursor": first["next_cursor"]}).json
    assert [item["action"] for item in rest["items"]] == ["project.created"]
    assert rest["next_cursor"] is None
