"""The deployed handlers, loaded from the repository's `functions/` folder exactly as Lambda loads them.

Lambda runs one invocation at a time per execution environment, and handlers rely on that (Powertools'
resolver and batch processor keep per-invocation state on module-level objects). So each concurrent
invocation here gets its own "container": its own copy of the function module, loaded from the file under
a unique module name, kept warm in a pool and reused, as Lambda reuses warm environments. The layer
(`pixcrawler.*`) is shared, as `/opt` is shared by a function's environments.
"""

from __future__ import annotations

import importlib.util
import itertools
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pixcrawler

Handler = Callable[[dict[str, Any], Any], Any]


class RepositoryNotFound(RuntimeError):
    """The CLI runs from an editable install; elsewhere it must be told where the repository is."""


def repository_root(explicit: str | Path | None = None) -> Path:
    """The checkout holding `alembic.ini` and `functions/`: given explicitly, or the editable install's own."""
    candidates = [Path(explicit)] if explicit else [Path(pixcrawler.__file__).resolve().parents[3], Path.cwd()]
    for candidate in candidates:
        if (candidate / "alembic.ini").is_file() and (candidate / "layers" / "common").is_dir():
            return candidate.resolve()
    raise RepositoryNotFound(
        "Cannot find the PixCrawler repository (a checkout with alembic.ini and functions/). Install it with "
        "`pip install -e .` from a checkout, or pass --repo / set PIXCRAWLER_REPO."
    )


_serial = itertools.count(1)


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"pixcrawler_local_{name}_{next(_serial)}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: Pydantic resolves postponed annotations through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


@dataclass
class LambdaContext:
    """The attributes Powertools and the handlers read from Lambda's context object."""

    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Function:
    """A function's pool of warm containers, at most `concurrency` of them, each serving one call at a time."""

    def __init__(self, name: str, path: Path, concurrency: int = 1, timeout_seconds: float = 900.0) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"function {name!r} not found at {path}")
        self.name, self.path, self.timeout_seconds = name, path, timeout_seconds
        self._idle: queue.LifoQueue[Handler] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(concurrency)

    @classmethod
    def from_repository(cls, root: Path, name: str, **options: Any) -> Function:
        return cls(name, root / "functions" / name / "app.py", **options)

    def warm(self) -> None:
        """Load one container now, so an import error shows at start-up rather than on the first request."""
        self._idle.put(self._new_container())

    def _new_container(self) -> Handler:
        handler: Handler = load_module(self.path, self.name).lambda_handler
        return handler

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._slots:
            try:
                handler = self._idle.get_nowait()
            except queue.Empty:
                handler = self._new_container()
            try:
                return handler(event, LambdaContext(self.name, self.timeout_seconds))
            finally:
                self._idle.put(handler)
