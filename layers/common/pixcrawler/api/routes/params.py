"""Path parameters shared by the routers: ids are positive and fit the integer columns, so a bad id is a 422,
never a database error."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

INT4_MAX = 2**31 - 1

Id = Annotated[int, Path(ge=1, le=INT4_MAX)]

# `openapi_extensions` is merged into the operation as is: how an operation overrides the document's bearer security.
PUBLIC: dict[str, Any] = {"security": []}  # for operations the gateway routes without the JWT authorizer


def no_content() -> Response[str]:
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")
