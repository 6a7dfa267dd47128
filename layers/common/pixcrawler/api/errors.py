"""Every error the API answers, in one JSON shape:

    {"error": {"status": 422, "code": "validation_error", "message": "...", "details": [{"field", "message"}]}}

Handlers are registered once on the resolver, so no route formats an error itself, and `document` declares the
same shape, once, for every error status each operation of the OpenAPI document can answer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.exceptions import ServiceError as HttpError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pixcrawler import sqlstate
from pixcrawler.api.context import Unauthenticated
from pixcrawler.links import LinkError
from pixcrawler.services.errors import ServiceError

logger = Logger(child=True)

_CODES = {status.value: status.phrase.lower().replace(" ", "_") for status in HTTPStatus}
DATA_EXCEPTION_CLASS = "22"  # SQLSTATE class: a value the column cannot hold (out of range, bad text)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: int
    code: str
    message: str
    details: list[ErrorDetail]


class Error(BaseModel):
    """What every 4xx and 5xx answer carries."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = Error.model_validate(
        {"error": {"status": status, "code": code, "message": message, "details": details or []}}
    ).model_dump()
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _field(location: tuple[Any, ...]) -> str:
    """`body.rules.min_width` -> `rules.min_width`; query and path parameters keep their location."""
    parts = [str(part) for part in location]
    return ".".join(parts[1:] if parts[:1] == ["body"] else parts) or "body"


def _validation(error: RequestValidationError) -> Response:
    details = [
        {"field": _field(tuple(problem.get("loc", ()))), "message": str(problem.get("msg"))}
        for problem in error.errors()
    ]
    return error_response(422, "validation_error", "The request is not valid.", details)


def _database(error: DBAPIError) -> Response:
    state = sqlstate.of(error) or ""
    if state == sqlstate.UNIQUE_VIOLATION:
        return error_response(409, "conflict", "This conflicts with something that already exists.")
    if sqlstate.is_integrity_violation(error):
        return error_response(409, "conflict", "The change conflicts with the stored data.")
    if state.startswith(DATA_EXCEPTION_CLASS):
        return error_response(400, "invalid_value", "A value is out of range or malformed.")
    if isinstance(error, OperationalError | InterfaceError) and not state:
        return _unavailable(error)
    return _internal(error)


def _unavailable(error: Exception) -> Response:
    logger.warning("database unavailable", exc_info=error)
    return error_response(
        503, "unavailable", "The database is unavailable; try again shortly.", headers={"Retry-After": "5"}
    )


def _internal(error: Exception) -> Response:
    logger.exception("unhandled error", exc_info=error)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def register(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def validation(error: RequestValidationError) -> Response:
        return _validation(error)

    @app.exception_handler(NotFoundError)
    def no_route(error: NotFoundError) -> Response:
        event = app.current_event
        allowed = sorted(
            {
                route.method
                for route in app._static_routes + app._dynamic_routes  # no public accessor for the route table
                if route.rule.match(event.path)
            }
        )
        if allowed:
            message = f"{event.http_method} is not allowed here."
            return error_response(405, "method_not_allowed", message, headers={"Allow": ", ".join(allowed)})
        return error_response(404, "not_found", f"No route for {event.http_method} {event.path}.")

    @app.exception_handler(Unauthenticated)
    def unauthenticated(error: Unauthenticated) -> Response:
        return error_response(401, "unauthenticated", str(error), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ServiceError)
    def service(error: ServiceError) -> Response:
        details = [{"field": error.field, "message": error.message}] if error.field else []
        headers = {"Retry-After": "5"} if error.status == HTTPStatus.SERVICE_UNAVAILABLE else {}
        return error_response(error.status, error.code, error.message, details, headers)

    @app.exception_handler(LinkError)
    def link(error: LinkError) -> Response:
        return error_response(error.status, error.code, str(error))

    @app.exception_handler(HttpError)
    def http(error: HttpError) -> Response:
        code = _CODES.get(error.status_code, "error")
        return error_response(error.status_code, code, str(error.msg))

    @app.exception_handler(DBAPIError)
    def database(error: DBAPIError) -> Response:
        return _database(error)

    @app.exception_handler([DisconnectionError, PoolTimeout])
    def disconnected(error: Exception) -> Response:
        return _unavailable(error)

    @app.exception_handler(Exception)
    def internal(error: Exception) -> Response:
        return _internal(error)


_REF = "#/components/schemas/{model}"
_MEANINGS = {
    "400": "The request cannot be read: malformed JSON, an undecodable body, a bad cursor, or a value the "
    "database cannot hold",
    "401": "No verified bearer token, or one whose `sub` is not a UUID",
    "404": "No such resource, or another user's (the two are indistinguishable)",
    "409": "The resource's state does not allow this, or it conflicts with stored data",
    "415": "The body is not JSON sent as `Content-Type: application/json`, or its charset is unknown",
    "422": "A parameter or body field is invalid; `details` names each",
    "503": "The database or a queue is unavailable; nothing was stored, retry after `Retry-After` seconds",
}


def _statuses(operation: dict[str, Any]) -> set[str]:
    """The error statuses the shared machinery can answer for an operation, read from the operation itself."""
    statuses = {"422", "503"}
    secured = operation.get("security") != []
    if secured:
        statuses |= {"401", "409"}  # the first request creates the profile, and its email may be taken
    if secured or operation.get("parameters") or "requestBody" in operation:
        statuses.add("400")
    if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
        statuses.add("404")
    if "requestBody" in operation:
        statuses.add("415")
    return statuses


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare the error statuses of every operation, each with the one error shape (replacing Powertools'
    `HTTPValidationError`, which this API never sends), and no content where no body is sent."""
    schema = Error.model_json_schema(ref_template=_REF)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    schemas.update(schema.pop("$defs"))
    schemas["Error"] = schema
    error = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in _statuses(operation):
                responses.setdefault(status, {"description": _MEANINGS[status]})
            for status, response in responses.items():
                if status == "204" or status.startswith("3"):  # no content, or a redirect with an empty body
                    response.pop("content", None)
                elif int(status) >= 400:
                    response["content"] = error
    return spec
