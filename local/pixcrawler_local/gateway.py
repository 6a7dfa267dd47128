"""The local API Gateway (HTTP API, payload format 2.0) in front of the API function.

Werkzeug serves HTTP; each request becomes the event API Gateway would send, the API function's response
dict becomes the HTTP response. Authorization mirrors the deployed JWT authorizer: a valid bearer token's
claims go into `requestContext.authorizer.jwt.claims`. A request without a valid token is passed on with
no claims, so protected routes answer the API's own 401 and open routes (health, docs, download links)
work, with no second list of which routes are open.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from pixcrawler_local import tokens
from pixcrawler_local.ports import check_port

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded", "+json", "+xml")

Invoke = Callable[[dict[str, Any]], Any]


def _joined(pairs: Iterable[tuple[str, str]], lower: bool = False) -> dict[str, str]:
    """HTTP API v2 joins repeated headers and query parameters with commas."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower() if lower else name
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _is_text(content_type: str) -> bool:
    return not content_type or any(marker in content_type for marker in _TEXT_TYPES)


def to_event(request: Request, claims: dict[str, str] | None) -> dict[str, Any]:
    headers = _joined(((k, v) for k, v in request.headers.items() if k.lower() != "cookie"), lower=True)
    cookies = [c.strip() for c in request.headers.get("Cookie", "").split(";") if c.strip()]
    raw = request.get_data()
    text_body = _is_text(request.content_type or "")
    if text_body:
        try:
            body: str | None = raw.decode()
        except UnicodeDecodeError:
            text_body = False
    if not text_body:
        body = base64.b64encode(raw).decode()
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": request.host,
        "domainPrefix": request.host.split(".")[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "sourceIp": request.remote_addr or "127.0.0.1",
            "userAgent": request.headers.get("User-Agent", ""),
        },
        "requestId": uuid.uuid4().hex,
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode(),
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": not text_body,
    }
    if cookies:
        event["cookies"] = cookies
    if request.args:
        event["queryStringParameters"] = _joined(request.args.items(multi=True))
    if raw:
        event["body"] = body
    return event


def to_response(result: Any) -> Response:
    """Shape the function's answer the way HTTP API v2 does, including its 'plain value means 200 JSON' rule."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return Response(json.dumps(result), 200, content_type="application/json")
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    headers = Headers()
    for name, value in (result.get("headers") or {}).items():
        headers.add(name, str(value))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        headers.add("Set-Cookie", cookie)
    if "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    return Response(body, int(result["statusCode"]), headers=headers)


class Gateway:
    """A WSGI application: HTTP request -> event -> API function -> HTTP response."""

    def __init__(self, invoke: Invoke, token_secret: str, log: logging.Logger | None = None) -> None:
        self._invoke, self._secret, self._log = invoke, token_secret, log or logging.getLogger("local-stack.gateway")

    def _claims(self, request: Request) -> dict[str, str] | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return tokens.verify(self._secret, token.strip())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.perf_counter()
        try:
            response = to_response(self._invoke(to_event(request, self._claims(request))))
        except Exception:
            self._log.exception("the API function raised")
            response = Response('{"message":"Internal Server Error"}', 500, content_type="application/json")
        self._log.info(
            "%s %s -> %d (%.0f ms)",
            request.method,
            request.full_path.rstrip("?"),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response(environ, start_response)


class _Handler(WSGIRequestHandler):
    """Werkzeug's access log is replaced by the gateway's own line per request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve(app: Gateway, host: str, port: int) -> BaseWSGIServer:
    """Bind now, so a port in use fails here; the caller runs `serve_forever` in a thread.

    Werkzeug reports a taken port by printing and exiting the process, so the port is checked first.
    """
    check_port(host, port, "API", "--port")
    return make_server(host, port, app, threaded=True, request_handler=_Handler)
