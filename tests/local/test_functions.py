"""Handlers load from their files like Lambda loads them: one module per warm environment."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pixcrawler_local.functions import Function, LambdaContext, RepositoryNotFound, repository_root

HANDLER = """
from __future__ import annotations

import threading
import time

from pydantic import BaseModel

calls = []


class Body(BaseModel):  # postponed annotations resolve only if the module is registered like an import
    value: int


def lambda_handler(event, context):
    calls.append(threading.get_ident())
    time.sleep(event.get("sleep", 0))
    return {"module": __name__, "value": Body.model_validate(event).value,
            "remaining_ms": context.get_remaining_time_in_millis()}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "functions" / "echo").mkdir(parents=True)
    (tmp_path / "functions" / "echo" / "app.py").write_text(HANDLER)
    (tmp_path / "layers" / "common").mkdir(parents=True)
    (tmp_path / "alembic.ini").write_text("")
    return tmp_path


def test_a_function_is_invoked_with_a_lambda_context(repo: Path) -> None:
    function = Function.from_repository(repository_root(repo), "echo", timeout_seconds=30)
    result = function.invoke({"value": 3})
    assert result["value"] == 3 and 0 < result["remaining_ms"] <= 30_000


def test_concurrent_invocations_get_separate_warm_environments(repo: Path) -> None:
    function = Function.from_repository(repo, "echo", concurrency=2)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(function.invoke({"value": 1, "sleep": 0.3})))]
    threads.append(threading.Thread(target=lambda: results.append(function.invoke({"value": 2, "sleep": 0.3}))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({result["module"] for result in results}) == 2
    started = time.monotonic()
    assert function.invoke({"value": 1})["module"] in {result["module"] for result in results}  # reused, warm
    assert time.monotonic() - started < 0.2


def test_a_missing_function_or_repository_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        Function.from_repository(repo, "nope")
    with pytest.raises(RepositoryNotFound, match="--repo"):
        repository_root(tmp_path / "functions")


def test_the_context_counts_down() -> None:
    context = LambdaContext("f", timeout_seconds=0.05)
    time.sleep(0.06)
    assert context.get_remaining_time_in_millis() == 0
