"""Openverse (`GET /v1/images/?q=&page=&page_size=`): openly licensed images, no key needed.

Anonymous callers get about 20 requests/min, `page_size` up to 20 and at most 240 results per query;
registered client credentials (OPENVERSE_CLIENT_ID/SECRET) raise those limits.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pixcrawler import snapstart
from pixcrawler.providers import base
from pixcrawler.providers.base import Candidate, Provider, ProviderError, Work
from pixcrawler.settings import get_settings

_NON_CC = {"cc0": "CC0", "pdm": "Public Domain Mark"}
_token: dict[str, Any] = {}
_token_lock = threading.Lock()
snapstart.after_restore(_token.clear)
"""A token fetched before a snapshot would be shared by every restored environment: each fetches its own."""


def license_name(code: Any, version: Any) -> str | None:
    """`by` + `2.0` -> `CC BY 2.0`; `cc0` -> `CC0 1.0`; `pdm` -> `Public Domain Mark 1.0`."""
    if not isinstance(code, str) or not code:
        return None
    name = _NON_CC.get(code.lower(), f"CC {code.upper()}")
    return f"{name} {version}"[:100] if isinstance(version, str) and version else name


def parse_result(result: dict[str, Any]) -> Candidate:
    return Candidate(
        url=base.http_url(result["url"]),
        source_url=base.optional_text(result.get("foreign_landing_url")),
        title=base.optional_text(result.get("title")),
        width=base.optional_int(result.get("width")),
        height=base.optional_int(result.get("height")),
        license=license_name(result.get("license"), result.get("license_version")),
        license_url=base.optional_text(result.get("license_url")),
        creator=base.optional_text(result.get("creator")),
    )


def _bearer() -> dict[str, str]:
    """An access token from the client credentials, cached until shortly before it expires."""
    settings = get_settings()
    if not (settings.openverse_client_id and settings.openverse_client_secret):
        return {}
    with _token_lock:
        if _token.get("expires", 0) < time.time() + 60:
            answer = base.request_json(
                "POST",
                f"{settings.openverse_url}/v1/auth_tokens/token/",
                fields={
                    "client_id": settings.openverse_client_id,
                    "client_secret": settings.openverse_client_secret,
                    "grant_type": "client_credentials",
                },
            )
            if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
                raise ProviderError("Openverse token endpoint returned no access_token")
            _token.update(value=answer["access_token"], expires=time.time() + float(answer.get("expires_in", 3600)))
        return {"Authorization": f"Bearer {_token['value']}"}


class Openverse(Provider):
    name = "openverse"
    max_results = 240

    def candidates(self, work: Work) -> list[Candidate]:
        answer = base.request_json(
            "GET",
            f"{get_settings().openverse_url}/v1/images/",
            {"q": work.keyword, "page": work.page, "page_size": work.page_size},
            headers=_bearer(),
        )
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise ProviderError("Openverse answer has no results list")
        return base.parse_each(results, parse_result, self.name)
