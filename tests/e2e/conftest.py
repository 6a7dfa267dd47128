"""Run the installed `pixcrawler` command as a user would: a subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PIXCRAWLER = str(Path(sys.executable).with_name("pixcrawler"))


def fresh_env(root: Path) -> dict[str, str]:
    """Only what a fresh shell has, with its home in `root`: no DATABASE_URL, no AWS settings, no virtualenv
    activation.

    TMPDIR stays the system's: PostgreSQL's socket path must stay short (pgserver falls back to a runtime dir
    under it when the data dir's path is too long for a unix socket)."""
    home = root / "home"
    home.mkdir()
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    return fresh_env(tmp_path)


def pixcrawler(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIXCRAWLER, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
