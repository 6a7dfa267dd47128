"""A tiny OIDC provider on loopback, for the browser tests only: authorization code with PKCE (S256), checked
as a real provider checks it, issuing ID tokens the local gateway accepts (HS256 with the data dir's secret, as
`pixcrawler token` mints them)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pixcrawler_local import tokens

CLIENT_ID = "pixcrawler-browser"
EMAIL = "oidc-user@example.com"


@dataclass
class Provider:
    """`secret()` gives the token secret once the stack has made it; `seen` records every request's path and
    parameters, and `exchanged` the codes whose verifier matched their challenge."""

    secret: Callable[[], str]
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    exchanged: list[str] = field(default_factory=list)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Provider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                provider._answer(self, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                provider._answer(self, urlsplit(self.path).path, {k: v[0] for k, v in parse_qs(body).items()})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, path: str, params: dict[str, str]) -> None:
        self.seen.append((path, params))
        if path == "/authorize":
            wanted = {"response_type": "code", "client_id": CLIENT_ID, "code_challenge_method": "S256"}
            if any(params.get(name) != value for name, value in wanted.items()) or not params.get("state"):
                handler.send_error(400, "not an authorization code request with PKCE (S256) from our client")
                return
            code = secrets.token_urlsafe(16)
            self._codes[code] = params
            query = urlencode({"code": code, "state": params["state"]})
            self._redirect(handler, f"{params['redirect_uri']}?{query}")
        elif path == "/token":
            self._token(handler, params)
        elif path == "/logout":
            self._redirect(handler, params["logout_uri"])
        else:
            handler.send_error(404)

    def _token(self, handler: BaseHTTPRequestHandler, params: dict[str, str]) -> None:
        asked = self._codes.pop(params.get("code", ""), None)
        verifier = params.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        good = (
            asked is not None
            and params.get("grant_type") == "authorization_code"
            and params.get("client_id") == CLIENT_ID
            and params.get("redirect_uri") == asked["redirect_uri"]
            and challenge == asked["code_challenge"]
        )
        if good:
            self.exchanged.append(params["code"])
            body: dict[str, str] = {"id_token": tokens.mint(self.secret(), EMAIL), "token_type": "Bearer"}
        else:
            body = {"error": "invalid_grant", "error_description": "the code or its verifier does not match"}
        data = json.dumps(body).encode()
        handler.send_response(200 if good else 400)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Access-Control-Allow-Origin", "*")  # the page calls it from the API's origin
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _redirect(handler: BaseHTTPRequestHandler, location: str) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
