"""Run the installed `pixcrawler` command as a user would: a subprocess with a clean environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

PIXCRAWLER = str(Path(sys.executable).with_name("pixcrawler"))


def fresh_env(home: Path) -> dict[str, str]:
    """Only what a fresh shell has: no DATABASE_URL, no AWS settings, no virtualenv activation.

    TMPDIR stays the system's: PostgreSQL's socket path must stay short (pgserver falls back to a runtime dir
    under it when the data dir's path is too long for a unix socket)."""
    home.mkdir()
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    return fresh_env(tmp_path / "home")


def pixcrawler(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIXCRAWLER, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def install_chromium() -> None:
    """Debian's Chromium, installed by name when it is missing and this is root on an apt machine (CI installs it
    too); anything else fails in one sentence: the browser tests are never skipped."""
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                timeout=900,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: install it with `apt-get install chromium` (as root)."
        )


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the end-to-end tests, driven by Playwright through its executable path (Playwright's
    own browser download needs the internet). Closed when the package's tests end: while Playwright's sync API is
    open, its event loop counts as running in the main thread, and a Lambda handler that runs an asyncio batch
    (the crawl function's) would then fail in any later test."""
    install_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
