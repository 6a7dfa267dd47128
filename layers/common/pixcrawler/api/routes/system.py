"""Health and documentation, both reachable without a token.

The OpenAPI models cost ~0.3-0.5 s to import, so the spec and the Swagger page are built on their first
request (and cached), never on the cold start of an ordinary request.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pixcrawler.api import errors
from pixcrawler.api.context import session
from pixcrawler.api.routes.params import PUBLIC
from pixcrawler.services.errors import Unavailable

router = APIGatewayHttpRouter()

TITLE = "PixCrawler API"
VERSION = "1.0.0"


class Health(BaseModel):
    status: str
    database: str


@router.get("/health", tags=["system"], openapi_extensions=PUBLIC)
def health() -> Health:
    try:
        session().execute(text("SELECT 1"))
    except DBAPIError as error:
        raise Unavailable("The database is unreachable.") from error
    return Health(status="ok", database="ok")


@cache
def openapi_json() -> str:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    resolver = cast(APIGatewayHttpResolver, router.api_resolver)  # set when the app includes this router
    spec = resolver.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description="Keywords in, licensed image datasets out. Every route but health, docs and downloads "
        "needs a bearer JWT; errors share one JSON shape: `{error: {status, code, message, details}}`.",
        security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearer": []}],
    )
    return json.dumps(errors.document(json.loads(spec)), indent=2)


@cache
def swagger_html() -> str:
    """Swagger UI with its script and stylesheet inlined from the Powertools package: works offline."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    assets = Path(swagger_ui.__file__).parent
    return generate_swagger_html(
        openapi_json().replace("</", "<\\/"),
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )


@router.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@router.get("/docs", include_in_schema=False, compress=True)
def docs() -> Response[str]:
    """The page links its own `?format=json` for the raw document."""
    if (router.current_event.query_string_parameters or {}).get("format") == "json":
        return openapi()
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=swagger_html())
