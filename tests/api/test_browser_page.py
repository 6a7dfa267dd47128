"""`GET /v1/app`, the dataset browser: one self-contained page, no token needed, a policy that allows exactly
what it runs, and the sign-in configuration the settings give it. (tests/e2e/test_browser.py drives it in
Chromium.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pixcrawler.settings import get_settings
from tests.api.conftest import Call

ASSETS = Path(__file__).resolve().parents[2] / "layers" / "common" / "pixcrawler" / "api" / "browser"


def _policy(reply_headers: dict[str, str]) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in reply_headers["Content-Security-Policy"].split(";")]
    return {name: values for name, *values in directives}


def _inline(html: str, tag: str) -> str:
    match = re.search(rf"<{tag}[^>]*>(.*?)</{tag}>", html, re.S)
    assert match is not None, tag
    return match.group(1)


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="config">(.*?)</script>', html, re.S)
    assert match is not None
    return dict(json.loads(match.group(1)))


def test_the_page_is_public_self_contained_and_runs_only_its_own_code(api: Call, aws: dict[str, Any]) -> None:
    reply = api("GET", "/v1/app")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    html = reply.text
    assert not re.search(r"""<(?:script|link|img)[^>]+(?:src|href)\s*=""", html)  # nothing loaded from elsewhere
    assert (ASSETS / "app.js").read_text() in html and (ASSETS / "app.css").read_text() in html
    policy = _policy(reply.headers)
    assert policy["default-src"] == ["'none'"]
    module = re.search(r'<script type="module">(.*?)</script>', html, re.S)
    assert module is not None
    assert policy["script-src"] == [_sha(module.group(1))]  # the one inline script, nothing else
    assert policy["style-src"] == [_sha(_inline(html, "style"))]
    bucket = links_origin(aws)
    assert policy["img-src"] == ["'self'", bucket]  # presigned thumbnails and views
    assert policy["connect-src"] == ["'self'"]  # no OIDC provider configured: the API only
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert reply.headers["Cache-Control"] == "no-store" and reply.headers["Referrer-Policy"] == "no-referrer"
    assert _config(html) == {"oidc": None}  # local mode: the page takes a token from its address


def links_origin(aws: dict[str, Any]) -> str:
    """Where moto's presigned links point (the API presigns against the same client settings)."""
    url = aws["s3"].generate_presigned_url("get_object", Params={"Bucket": aws["bucket"], "Key": "k"})
    return "/".join(url.split("/", 3)[:3])


def test_a_deployment_with_an_oidc_provider_signs_in_there(
    api: Call, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cognito = "https://pix.auth.eu-west-1.amazoncognito.com"
    monkeypatch.setenv("OIDC_AUTHORIZE_URL", f"{cognito}/oauth2/authorize")
    monkeypatch.setenv("OIDC_TOKEN_URL", f"{cognito}/oauth2/token")
    monkeypatch.setenv("OIDC_CLIENT_ID", "client123")
    monkeypatch.setenv("OIDC_LOGOUT_URL", f"{cognito}/logout")
    get_settings.cache_clear()  # the `aws` fixture clears it again when the test ends
    reply = api("GET", "/v1/app")
    assert _config(reply.text) == {
        "oidc": {
            "authorize_url": f"{cognito}/oauth2/authorize",
            "token_url": f"{cognito}/oauth2/token",
            "client_id": "client123",
            "scopes": "openid email",
            "logout_url": f"{cognito}/logout",
        }
    }
    assert _policy(reply.headers)["connect-src"] == ["'self'", cognito]  # the code exchange, and nothing else


def test_configuration_cannot_break_out_of_its_script_block(
    api: Call, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OIDC_AUTHORIZE_URL", "https://idp.example/authorize")
    monkeypatch.setenv("OIDC_TOKEN_URL", "https://idp.example/token")
    monkeypatch.setenv("OIDC_CLIENT_ID", "</script><script>alert(1)</script>")
    get_settings.cache_clear()
    html = api("GET", "/v1/app").text
    assert "<script>alert(1)" not in html
    assert _config(html)["oidc"]["client_id"] == "</script><script>alert(1)</script>"
