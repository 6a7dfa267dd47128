"""The CLI's API client against real HTTP servers on loopback: how a deployed stack's answers read (API
Gateway's own, storage's XML, a page that is not the API) and polls that sit out a passing failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixcrawler_local.client import ApiError, Client, download
from pixcrawler_local.httphost import HttpHost, Response

JSON = {"Content-Type": "application/json"}


def test_the_gateway_s_refusal_reads_as_a_token_to_renew() -> None:
    """API Gateway's JWT authorizer answers before the function runs, in its own `{"message": ...}`."""
    with HttpHost() as gateway:
        gateway.routes["/v1/projects"] = Response(b'{"message":"Unauthorized"}', 401, JSON)
        with pytest.raises(ApiError) as refused:
            Client(gateway.base_url, "t0ken").post("/v1/projects", {"name": "x"})
    assert str(refused.value) == (
        "POST /v1/projects answered 401: Unauthorized; the token was refused: it is not valid for this API or has "
        "expired, so get a new one"
    )


def test_a_page_that_is_not_json_is_not_the_api() -> None:
    with HttpHost() as site:
        site.routes["/v1/health"] = Response(
            b"<html><body>Welcome</body></html>", headers={"Content-Type": "text/html"}
        )
        with pytest.raises(ApiError, match=r"^GET /v1/health answered 200: <html>.*; not JSON, so not the Pix"):
            Client(site.base_url).get("/v1/health")


def test_a_failed_download_names_the_file_and_storage_s_words_not_the_link(tmp_path: Path) -> None:
    expired = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    with HttpHost() as storage:
        storage.routes["/v1/downloads/k3y"] = Response(status=302, headers={"Location": storage.url("/object")})
        storage.routes["/object"] = Response(expired, 403, {"Content-Type": "application/xml"})
        with pytest.raises(ApiError) as failed:
            download(storage.url("/v1/downloads/k3y"), tmp_path / "birds.zip")
    assert str(failed.value) == "the download of birds.zip answered 403: Request has expired"
    assert not (tmp_path / "birds.zip").exists()


def test_a_poll_sits_out_a_passing_failure_and_not_a_refusal() -> None:
    answers = [Response(b'{"message":"Service Unavailable"}', 503, JSON)]

    def job(path: str) -> Response:
        return answers.pop(0) if answers else Response(json.dumps({"id": 7, "status": "completed"}).encode(), 200, JSON)

    with HttpHost() as api:
        api.routes["/v1/crawl-jobs/7"] = job
        assert Client(api.base_url).wait("/v1/crawl-jobs/7")["status"] == "completed"
        assert api.requests.count("/v1/crawl-jobs/7") == 2
        with pytest.raises(ApiError, match="answered 404"):  # the default answer of the host: not retried
            Client(api.base_url).wait("/v1/crawl-jobs/8")
        assert api.requests.count("/v1/crawl-jobs/8") == 1
