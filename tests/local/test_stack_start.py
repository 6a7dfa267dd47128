"""A stack that cannot start says why and leaves nothing running: PostgreSQL boots while the emulator starts, so
an emulator that fails must not leave the database's server behind on the data dir."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from pixcrawler.settings import SettingsError
from pixcrawler_local.stack import LocalStack, StackOptions


def servers_on(directory: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(str(directory) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_an_emulator_that_cannot_start_leaves_no_database_running(tmp_path: Path, environ: None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "buckets").write_text("not a folder: the emulator cannot keep objects here")
    options = StackOptions(data_dir=data_dir, port=0, sweep_interval=0)
    with pytest.raises(RuntimeError, match="the S3/SQS emulator exited while starting"), LocalStack(options):
        pass
    assert (data_dir / "postgres" / "PG_VERSION").exists()  # the database did start meanwhile
    assert servers_on(data_dir / "postgres") == []


def test_a_setting_the_environment_gets_wrong_stops_the_start_by_name(
    tmp_path: Path, environ: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a 500 at the first request: `pixcrawler crawl` and `serve` print the error and exit."""
    monkeypatch.setenv("CRAWL_HOST_OVERRIDES", '{"127.0.0.1": {"min_interval_ms": 0}}')
    options = StackOptions(data_dir=tmp_path / "data", port=0, sweep_interval=0)
    with pytest.raises(SettingsError, match="CRAWL_HOST_OVERRIDES"), LocalStack(options):
        pass
    assert servers_on(tmp_path / "data") == []
