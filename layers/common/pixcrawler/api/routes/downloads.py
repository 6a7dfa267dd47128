"""The one route a download link points at. It carries no JWT (browsers and curl follow the link as is), so
the gateway routes it without the authorizer and the signed token is its only key."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler.api.context import session
from pixcrawler.api.routes.params import PUBLIC
from pixcrawler.services import export_jobs

router = APIGatewayHttpRouter()


@router.get(
    "/downloads/<token>",
    tags=["exports"],
    openapi_extensions=PUBLIC,
    responses={
        302: {"description": "Redirect to a presigned URL valid for 5 minutes"},
        403: {"description": "Not a link this API signed"},
        404: {"description": "The export no longer exists"},
        410: {"description": "The link has expired"},
    },
)
def download(token: Annotated[str, Path(max_length=512)]) -> Response[str]:
    """403 for a forged link, 410 for an expired one, 404 when the export is gone."""
    url = export_jobs.download_url(session(), token)
    return Response(status_code=302, headers={"Location": url, "Cache-Control": "no-store"}, body="")
