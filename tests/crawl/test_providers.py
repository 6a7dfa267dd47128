"""Providers parse the real response shapes (trimmed recordings) served from a loopback API."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pixcrawler.providers import ProviderError, RateLimited, Work, get_provider, openverse
from pixcrawler.providers import base as provider_base
from pixcrawler.settings import get_settings
from pixcrawler_local.httphost import HttpHost, Response
from tests.crawl.conftest import fixture_json


@pytest.fixture
def api(host: HttpHost, monkeypatch: pytest.MonkeyPatch) -> HttpHost:
    monkeypatch.setenv("OPENVERSE_URL", host.base_url)
    monkeypatch.setenv("WIKIMEDIA_URL", host.url("/w/api.php"))
    get_settings.cache_clear()
    provider_base.reset()
    openverse._token.clear()
    yield host
    get_settings.cache_clear()
    provider_base.reset()
    openverse._token.clear()


def as_json(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body).encode(), status, {"Content-Type": "application/json", **headers})


WORK = Work(keyword="cat", page=3, page_size=20)


def test_openverse_page_is_parsed(api: HttpHost) -> None:
    api.routes["/v1/images/"] = as_json(fixture_json("openverse_page.json"))
    found = get_provider("openverse").candidates(WORK)
    assert len(found) == 4
    first = found[0]
    assert first.url == "https://live.staticflickr.com/3313/3481540500_c846c62863_b.jpg"
    assert first.source_url == "https://www.flickr.com/photos/32426194@N00/3481540500"
    assert (first.title, first.creator, first.license) == ("Cat Fish 2", "admiller", "CC BY 2.0")
    assert (first.width, first.height) == (716, 1024)
    assert first.license_url == "https://creativecommons.org/licenses/by/2.0/"
    assert api.requests == ["/v1/images/?q=cat&page=3&page_size=20"]
    assert "PixCrawler" in get_settings().crawl_user_agent


def test_openverse_bad_results_are_skipped_not_fatal(api: HttpHost, caplog: pytest.LogCaptureFixture) -> None:
    page = fixture_json("openverse_page.json")
    broken = copy.deepcopy(page["results"][:3])
    del broken[0]["url"]
    broken[1]["url"] = "javascript:alert(1)"
    broken[2]["width"] = "wide"
    page["results"] = [*broken, "not an object"]
    api.routes["/v1/images/"] = as_json(page)
    found = get_provider("openverse").candidates(WORK)
    assert [candidate.width for candidate in found] == [None]
    assert caplog.text.count("openverse: skipped a result") == 3


def test_openverse_empty_answer(api: HttpHost) -> None:
    api.routes["/v1/images/"] = as_json(fixture_json("openverse_empty.json"))
    assert get_provider("openverse").candidates(WORK) == []


def test_openverse_uses_client_credentials_when_configured(api: HttpHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENVERSE_CLIENT_ID", "id")
    monkeypatch.setenv("OPENVERSE_CLIENT_SECRET", "secret")
    get_settings.cache_clear()
    api.routes["/v1/images/"] = as_json(fixture_json("openverse_empty.json"))
    api.routes["/v1/auth_tokens/token/"] = as_json({"access_token": "tok", "expires_in": 3600})
    get_provider("openverse").candidates(WORK)
    get_provider("openverse").candidates(WORK)
    posts = [request.body.decode() for request in api.received if request.method == "POST"]
    assert len(posts) == 1 and "grant_type=client_credentials" in posts[0] and "client_id=id" in posts[0]
    searches = [request for request in api.received if request.path.startswith("/v1/images/")]
    assert [request.headers.get("Authorization") for request in searches] == ["Bearer tok", "Bearer tok"]


def test_wikimedia_page_is_parsed_in_search_order(api: HttpHost) -> None:
    api.routes["/w/api.php"] = as_json(fixture_json("wikimedia_page.json"))
    found = get_provider("wikimedia").candidates(Work(keyword="cat", page=2, page_size=20))
    assert [candidate.url.rsplit("/", 1)[-1] for candidate in found][2] == "Tired_20-year-old_cat.jpg"
    tired = found[2]
    assert tired.creator == "Dimitri “Diti” Torterat"
    assert (tired.license, tired.license_url) == (
        "CC BY 2.0 fr",
        "https://creativecommons.org/licenses/by/2.0/fr/deed.en",
    )
    assert (tired.title, tired.width, tired.height) == ("Tired 20-year-old cat", 2484, 1870)
    assert tired.source_url == "https://commons.wikimedia.org/wiki/File:Tired_20-year-old_cat.jpg"
    assert found[0].license is None and found[0].title == "Cat November 2010-1a.jpg"
    query = api.requests[0]
    assert "generator=search" in query and "gsrnamespace=6" in query and "gsroffset=20" in query
    assert "iiprop=url%7Csize%7Cmime%7Cextmetadata" in query


def test_wikimedia_skips_non_images_and_handles_no_hits(api: HttpHost) -> None:
    page = fixture_json("wikimedia_page.json")
    first = next(iter(page["query"]["pages"].values()))
    first["imageinfo"][0]["mime"] = "application/pdf"
    api.routes["/w/api.php"] = as_json(page)
    assert len(get_provider("wikimedia").candidates(WORK)) == 2
    api.routes["/w/api.php"] = as_json(fixture_json("wikimedia_empty.json"))
    assert get_provider("wikimedia").candidates(WORK) == []


def test_rate_limit_raises_with_retry_after(api: HttpHost) -> None:
    api.routes["/v1/images/"] = as_json({"detail": "throttled"}, 429, **{"Retry-After": "17"})
    with pytest.raises(RateLimited) as caught:
        get_provider("openverse").candidates(WORK)
    assert caught.value.retry_after == 17


def test_outage_and_api_errors_raise_provider_error(api: HttpHost) -> None:
    api.routes["/v1/images/"] = as_json({}, 503)
    with pytest.raises(ProviderError, match="HTTP 503"):
        get_provider("openverse").candidates(WORK)
    api.routes["/w/api.php"] = as_json({"error": {"code": "badvalue"}})
    with pytest.raises(ProviderError, match="badvalue"):
        get_provider("wikimedia").candidates(WORK)


def test_url_list_provider_yields_the_chunk_urls() -> None:
    work = Work(keyword="cat", page=1, page_size=20, urls=("http://a/1.jpg", "http://a/2.jpg"))
    assert [candidate.url for candidate in get_provider("urls").candidates(work)] == list(work.urls)
