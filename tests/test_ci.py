"""`.ci/run` checks what the README promises: ruff (lint and format) and mypy, functions included, before
exactly the README's test command, and any failing step fails the run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci" / "run"


def ci_commands() -> list[str]:
    lines = [line.strip() for line in CI.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_lints_type_checks_every_function_then_runs_the_readme_test_command() -> None:
    commands = ci_commands()
    assert "set -euo pipefail" in commands
    readme_test = re.search(r"^# install and run the test suite.*\n(.+)$", (ROOT / "README.md").read_text(), re.M)
    assert readme_test is not None
    checks = ["ruff check .", "ruff format --check .", "mypy", "for function in functions/*/app.py; do"]
    positions = [commands.index(check) for check in checks]
    assert positions == sorted(positions)
    assert commands[positions[-1] + 1] == 'mypy "$function"'
    assert commands[-1] == readme_test.group(1)
    install = next(i for i, command in enumerate(commands) if "apt-get install" in command and "chromium" in command)
    assert positions[-1] < install < len(commands) - 1  # the browser tests' Chromium, before the tests run


def test_mypy_checks_a_function_module_on_its_own() -> None:
    """The loop's command really type-checks a handler against the layer (a wrong return type fails it)."""
    result = subprocess.run(
        ["mypy", "functions/crawl/app.py"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout
