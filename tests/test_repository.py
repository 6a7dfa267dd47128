"""The checkout itself: the virtual environments the README and CI create never show up as changes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
@pytest.mark.parametrize("venv", [".venv", ".venv-ci"])
def test_virtual_environments_are_ignored(venv: str) -> None:
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", f"{venv}/bin/python"], cwd=ROOT, check=False
    )
    assert checked.returncode == 0, f"{venv}/ is not in .gitignore"
