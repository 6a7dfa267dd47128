"""The per-user list of running `serve` stacks: an entry counts only while its process and its API port live."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from pixcrawler_local import registry
from pixcrawler_local.httphost import HttpHost


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_running_stack_is_listed(tmp_path: Path) -> None:
    with HttpHost() as api:
        stack = registry.RunningStack(os.getpid(), tmp_path / "state", api.base_url)
        entry = registry.announce(stack)
        assert registry.running() == [stack]
    assert entry.parent == registry.directory() and entry.exists()


def test_entries_of_killed_stacks_are_ignored_and_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    with HttpHost() as api:
        gone = registry.announce(registry.RunningStack(dead.pid, tmp_path / "a", api.base_url))
        deaf = registry.announce(
            registry.RunningStack(os.getpid(), tmp_path / "b", f"http://127.0.0.1:{closed_port()}")
        )
        assert registry.running() == []
    assert not gone.exists() and not deaf.exists()


def test_an_unreadable_entry_is_skipped(tmp_path: Path) -> None:
    registry.directory().mkdir(parents=True)
    (registry.directory() / "123.json").write_text('{"pid": ')
    assert registry.running() == []
