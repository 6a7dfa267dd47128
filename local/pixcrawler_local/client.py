"""A small HTTP client for the PixCrawler API, used by `pixcrawler demo` and `pixcrawler crawl`.

They drive the product exactly as a user would, over HTTP with a bearer token, so the demo proves the
gateway, the API function and the download link as well as the workers; `pixcrawler crawl --api` drives a
deployed stack with the same client. A refusal or an unreachable API becomes one sentence in the API's own
words, and no message ever holds the bearer token or a download link (both are keys).
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TERMINAL = {"completed", "failed", "cancelled"}
TRANSIENT = {429, 500, 502, 503, 504}
"""Answers that say "not now" (API Gateway's throttle and its Lambda errors, the API's 503) rather than "no"."""
POLL_RETRIES = 4
"""Failed polls in a row that a wait sits out (2 + 4 + 8 + 16 s) before it gives up."""

logger = logging.getLogger(__name__)

TOKEN_HINTS = {
    401: "the token was refused: it is not valid for this API or has expired, so get a new one",
    403: "the token is not allowed to do this",
}
"""What a user can do about the answers to a request with their token that are about the token."""

_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)


def said(body: str) -> str:
    """The words of an error answer: the API's `error.message` with each field's problem, API Gateway's own
    `message` (its 401/403/404 come before the function runs), storage's XML `<Message>`, else the body's
    start."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and error.get("message"):
            fields = [
                f"{detail.get('field')}: {detail.get('message')}"
                for detail in error.get("details") or []
                if isinstance(detail, dict)
            ]
            message = str(error["message"])
            return f"{message.rstrip('.')} ({'; '.join(fields)})" if fields else message
        if document.get("message"):
            return str(document["message"])
    if match := _XML_MESSAGE.search(body):
        return match.group(1).strip()
    return " ".join(body.split())[:200] or "no body"


class ApiError(RuntimeError):
    """An answer of 4xx or 5xx (or one that is not the API's JSON), said as one sentence: what was asked, the
    status, the answer's own words and what to do about it, when there is something (`note`)."""

    def __init__(self, asked: str, status: int, body: str, note: str = "") -> None:
        super().__init__(f"{asked} answered {status}: {said(body).rstrip('.')}" + (f"; {note}" if note else ""))
        self.status, self.body = status, body


class Unreachable(RuntimeError):
    """No HTTP answer at all: the host is unknown, refuses connections, does not answer in time or fails TLS."""

    def __init__(self, url: str, error: BaseException) -> None:
        parts = urlsplit(url)
        super().__init__(f"cannot reach {parts.scheme}://{parts.netloc}: {_why(error)}")


def _why(error: BaseException) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, socket.gaierror):
        return "its host name does not resolve (DNS)"
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused (nothing listens on that port)"
    if isinstance(reason, TimeoutError):
        return "it did not answer in time"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({reason.verify_message})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failed ({reason.reason or reason})"
    if isinstance(reason, ConnectionError | http.client.HTTPException):
        return "the connection was closed before an answer"
    return str(reason) or type(reason).__name__


def _open(
    request: urllib.request.Request | str, timeout: float, asked: str, hints: dict[int, str] | None = None
) -> http.client.HTTPResponse:
    """urlopen, with its failures as ApiError (an HTTP answer, with its status's hint) or Unreachable (none)."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        hint = (hints or {}).get(error.code, "")
        raise ApiError(asked, error.code, error.read().decode(errors="replace"), hint) from None
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
        raise Unreachable(url, error) from None
    return response


def _read(response: http.client.HTTPResponse, url: str, amount: int | None = None) -> bytes:
    """The answer's body (or its next `amount` bytes); a connection lost on the way is Unreachable."""
    try:
        return response.read(amount)
    except (OSError, http.client.HTTPException) as error:
        raise Unreachable(url, error) from None


class Client:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url, self.token, self.timeout = base_url.rstrip("/"), token, timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        asked = f"{method} {path.split('?')[0]}"
        with _open(request, self.timeout, asked, TOKEN_HINTS if self.token else None) as response:
            raw, status = _read(response, self.base_url), response.status
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(asked, status, raw.decode(errors="replace"), "not JSON, so not the PixCrawler API") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def wait(
        self,
        path: str,
        on_update: Callable[[dict[str, Any]], None] = lambda job: None,
        interval: float = 0.3,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Poll a job until it reaches a terminal status; `on_update` sees every state on the way. Polls start
        at 50 ms apart and slow to `interval`: a quick job (a validation often takes well under a second) is
        seen done soon after it is, and a long one costs no more requests than before. A poll that fails for a
        passing reason (a throttled or restarting API, a dropped connection) is tried again, up to
        POLL_RETRIES times in a row over about half a minute: the job goes on in the stack meanwhile, and a
        long crawl should not lose its download to one 503."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = min(0.05, interval)
        failures = 0
        while True:
            try:
                job: dict[str, Any] = self.get(path)
            except (ApiError, Unreachable) as error:
                passing = isinstance(error, Unreachable) or error.status in TRANSIENT
                if not passing or failures == POLL_RETRIES:
                    raise
                failures += 1
                logger.warning("%s; polling again in %d s", error, 2**failures)
                time.sleep(2**failures)
                continue
            failures = 0
            on_update(job)
            if job["status"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{path} still {job['status']} after {timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 1.5, interval)


def download(url: str, destination: Path, on_bytes: Callable[[int], None] = lambda n: None) -> int:
    """Fetch a download link (following its redirect to storage, as a browser does) into `destination`. The
    link is a key, so a failure names the file, not the link."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    size = 0
    with _open(url, 60, f"the download of {destination.name}") as response, partial.open("wb") as out:
        while chunk := _read(response, url, 1 << 20):
            out.write(chunk)
            size += len(chunk)
            on_bytes(len(chunk))
    shutil.move(partial, destination)
    return size
