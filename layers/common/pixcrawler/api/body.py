"""Request bodies: every route that takes one takes a JSON document, read the same way whatever bytes arrive.

Powertools' request validator picks a parser by `Content-Type` (JSON, forms, multipart) and lets decoding
failures escape as 500s: a body that is not UTF-8, an `isBase64Encoded` body that is not base64, JSON nested
past the recursion limit, multipart without a boundary. `JsonRequestValidation` replaces only that step of the
validator, so each of those is a 4xx in the API's error shape before any route or database is touched:

- no JSON media type (`application/json` or `application/<name>+json`) -> 415 naming the accepted type;
- a charset Python does not know as a text encoding -> 415; bytes the declared charset (default UTF-8)
  cannot decode, or base64 that is not base64 -> 400 naming the problem;
- malformed JSON (NaN and Infinity included: JSON has no such values), numbers past Python's integer
  conversion limit, or JSON nested deeper than the parser can follow -> 400.

An empty body is no body: the route's own validation then answers 422 naming the missing field.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware

from pixcrawler.services.errors import ServiceError

ACCEPTED_TYPE = "application/json"
DEFAULT_CHARSET = "utf-8"
CONTENT_TYPE_FIELD = "header.Content-Type"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "unsupported_media_type"


class UndecodableBody(ServiceError):
    code = "invalid_encoding"


class MalformedJson(ServiceError):
    code = "malformed_json"


def media_type(header: str | None) -> tuple[str, str | None]:
    """`Application/JSON; Charset="UTF-8"` -> ("application/json", "utf-8"); no header -> ("", None)."""
    kind, *parameters = (header or "").split(";")
    charset = None
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return kind.strip().lower(), charset


def is_json(kind: str) -> bool:
    top, _, subtype = kind.partition("/")
    return top == "application" and (subtype == "json" or subtype.endswith("+json"))


def _known_charset(charset: str) -> str:
    """`charset` if Python has a text codec of that name; encoding "" (decoding b"" short-cuts) finds out."""
    try:
        "".encode(charset)
    except (LookupError, ValueError) as error:  # unknown, bytes-to-bytes (base64, zlib), or `undefined`
        raise UnsupportedMediaType(
            f"The charset {charset!r} is not supported; send the body as {ACCEPTED_TYPE} in UTF-8.",
            field=CONTENT_TYPE_FIELD,
        ) from error
    return charset


def text(body: str | None, base64_encoded: bool, content_type: str | None) -> str | None:
    """The body as text, or None when there is none; raises the 4xx errors above."""
    if not body:
        return None
    kind, charset = media_type(content_type)
    if not is_json(kind):
        got = f"got {kind}" if kind else "no Content-Type was sent"
        raise UnsupportedMediaType(
            f"The request body must be JSON sent as `Content-Type: {ACCEPTED_TYPE}`; {got}.", field=CONTENT_TYPE_FIELD
        )
    charset = _known_charset(charset or DEFAULT_CHARSET)
    if not base64_encoded:  # text the gateway already decoded
        return body
    try:
        data = base64.b64decode(body, validate=True)
    except ValueError as error:  # binascii.Error, or non-ASCII characters
        raise UndecodableBody(
            "The request body is marked base64-encoded but is not valid base64.", field="body"
        ) from error
    try:
        return data.decode(charset)
    except ValueError as error:  # UnicodeDecodeError, or what another codec raises on bad input
        reason = f"{error.reason} at byte {error.start}" if isinstance(error, UnicodeDecodeError) else str(error)
        raise UndecodableBody(f"The request body is not valid {charset}: {reason}.", field="body") from error


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def parse(document: str | None) -> Any:
    if document is None:
        return None
    try:
        return json.loads(document, parse_constant=_not_json)
    except json.JSONDecodeError as error:
        message = f"The request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."
        raise MalformedJson(message, field="body") from error
    except ValueError as error:  # NaN or Infinity, or an integer past Python's 4,300-digit conversion limit
        raise MalformedJson(f"The request body is not valid JSON: {error}.", field="body") from error
    except RecursionError as error:
        raise MalformedJson("The request body nests JSON too deeply.", field="body") from error


class JsonRequestValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation with the body read as above; everything else (path, query, headers,
    the Pydantic validation of the parsed body) is Powertools' own."""

    def _get_body(self, app: ApiGatewayResolver) -> Any:
        event = app.current_event
        return parse(text(event.body, bool(event.is_base64_encoded), event.headers.get("content-type")))
