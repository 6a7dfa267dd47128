"""The dataset browser: one HTML page, served by the API function itself and reachable without a token.

Its script and stylesheet (`pixcrawler/api/browser/`) are inlined into the one answer, so the page works with
no internet and needs no route of its own for assets; the Content-Security-Policy allows exactly those two
inline blocks (by hash), images from the data bucket's presigned links, and fetches to this API and to the
OIDC provider's token endpoint. The page signs in either with a local token carried in the address's
fragment (never sent to a server, so never logged) or, deployed, with the OIDC provider the gateway trusts
(authorization code with PKCE), whose endpoints the settings give it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler import links
from pixcrawler.settings import get_settings

router = APIGatewayHttpRouter()

ASSETS = Path(__file__).resolve().parent.parent / "browser"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def config() -> dict[str, object]:
    """What the page needs to know about this deployment: how to sign in (null `oidc`: a local stack)."""
    settings = get_settings()
    oidc = None
    if settings.oidc_authorize_url and settings.oidc_token_url and settings.oidc_client_id:
        oidc = {
            "authorize_url": settings.oidc_authorize_url,
            "token_url": settings.oidc_token_url,
            "client_id": settings.oidc_client_id,
            "scopes": settings.oidc_scopes,
            "logout_url": settings.oidc_logout_url or None,
        }
    return {"oidc": oidc}


@cache
def _page(config_json: str, image_origin: str, token_origin: str) -> tuple[str, str]:
    """(HTML, Content-Security-Policy) for one configuration; cached, the assets never change in a process."""
    script = (ASSETS / "app.js").read_text(encoding="utf-8")
    style = (ASSETS / "app.css").read_text(encoding="utf-8")
    html = (
        (ASSETS / "index.html")
        .read_text(encoding="utf-8")
        .replace("/*STYLE*/", style)
        .replace("/*SCRIPT*/", script)
        .replace("/*CONFIG*/", config_json.replace("<", "\\u003c"))
    )
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_hash(script)}",
            f"style-src {_hash(style)}",
            f"img-src 'self' {image_origin}".rstrip(),
            f"connect-src 'self' {token_origin}".rstrip(),
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html, policy


@router.get("/app", include_in_schema=False, compress=True)
def app() -> Response[str]:
    settings = get_settings()
    # Thumbnails and full-size views are presigned GETs on the bucket's endpoint: presigning a probe key (no
    # network involved) names that origin exactly, locally the emulator and deployed the bucket's S3 host.
    image_origin = _origin(links.presigned_get("browser-probe", timedelta(minutes=1)))
    html, policy = _page(json.dumps(config(), sort_keys=True), image_origin, _origin(settings.oidc_token_url))
    headers = {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=html, headers=headers)
