"""The README's route table names the paths as the API serves them, so a newcomer can paste them into curl."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests import events
from tests.api.conftest import invoke

README = Path(__file__).resolve().parents[2] / "README.md"
# pages and the document itself, served outside the spec
SWAGGER_ROUTES = {("get", "/v1/docs"), ("get", "/v1/openapi.json"), ("get", "/v1/app")}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0])


def documented_routes() -> set[tuple[str, str]]:
    """(method, path) of every code span in the API section's route table; a bare path reuses the methods before."""
    api = README.read_text().split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    table = [line for line in api.splitlines() if line.startswith("| `")]
    routes: set[tuple[str, str]] = set()
    methods: list[str] = []
    for row in table:
        for span in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            words = span.replace(",", " ").split()
            methods = [word.lower() for word in words[:-1]] or methods
            routes |= {(method, _template(words[-1])) for method in methods}
    return routes


def test_every_documented_route_is_served_at_that_path(aws: dict[str, Any]) -> None:
    """(`aws`: the browser page names the bucket's origin from a presigned link, which needs credentials.)"""
    spec = invoke(events.http_event("GET", "/v1/openapi.json")).json
    served = {(method, _template(path)) for path, operations in spec["paths"].items() for method in operations}
    documented = documented_routes()
    assert len(documented) > 20
    assert documented - SWAGGER_ROUTES <= served, sorted(documented - SWAGGER_ROUTES - served)
    assert served <= documented, sorted(served - documented)
    for _, path in SWAGGER_ROUTES & documented:
        assert invoke(events.http_event("GET", path)).status == 200, path
