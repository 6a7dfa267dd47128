"""A stand-in for the AWS Parameters and Secrets Lambda Extension: a real HTTP server on loopback that answers
`GET /secretsmanager/get?secretId=` as the extension does (GetSecretValue's JSON), and refuses with 400 a
request whose `X-Aws-Parameters-Secrets-Token` is not the environment's session token."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pixcrawler.aws import EXTENSION_TOKEN_HEADER


@dataclass
class Extension:
    """What the extension serves (secret id -> string), the token it accepts, the token each request carried."""

    token: str
    secrets: dict[str, str] = field(default_factory=dict)
    tokens: list[str | None] = field(default_factory=list)
    port: int = 0


@contextmanager
def serving(token: str) -> Iterator[Extension]:
    served = Extension(token=token)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            carried = self.headers.get(EXTENSION_TOKEN_HEADER)
            served.tokens.append(carried)
            url = urlsplit(self.path)
            secret_id = parse_qs(url.query).get("secretId", [""])[0]
            if carried != served.token:
                self._answer(400, {"message": "bad session token or header key"})
            elif url.path != "/secretsmanager/get" or secret_id not in served.secrets:
                self._answer(400, {"message": f"secret {secret_id} not found"})
            else:
                self._answer(200, {"ARN": secret_id, "SecretString": served.secrets[secret_id]})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
