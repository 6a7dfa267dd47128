"""A small HTTP client for the PixCrawler API, used by `pixcrawler demo` and `pixcrawler crawl`.

They drive the product exactly as a user would, over HTTP with a bearer token, so the demo proves the
gateway, the API function and the download link as well as the workers.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

TERMINAL = {"completed", "failed", "cancelled"}


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:500]}")
        self.status, self.body = status, body


class Client:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url, self.token, self.timeout = base_url.rstrip("/"), token, timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise ApiError(method, path, error.code, error.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

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
        seen done soon after it is, and a long one costs no more requests than before."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = min(0.05, interval)
        while True:
            job: dict[str, Any] = self.get(path)
            on_update(job)
            if job["status"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{path} still {job['status']} after {timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 1.5, interval)


def download(url: str, destination: Path, on_bytes: Callable[[int], None] = lambda n: None) -> int:
    """Fetch a download link (following its redirect to storage, as a browser does) into `destination`."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    size = 0
    with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
            size += len(chunk)
            on_bytes(len(chunk))
    shutil.move(partial, destination)
    return size
