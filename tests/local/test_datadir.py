"""The data dir: one stack at a time, and secrets that outlive restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixcrawler_local.stack import DataDirBusy, load_secrets, lock_data_dir


def test_a_data_dir_serves_one_stack_at_a_time(tmp_path: Path) -> None:
    with lock_data_dir(tmp_path / "state"), pytest.raises(DataDirBusy, match="another --data-dir"):
        lock_data_dir(tmp_path / "state")
    lock_data_dir(tmp_path / "state").close()  # free again once the holder lets go


def test_secrets_are_made_once_and_kept_private(tmp_path: Path) -> None:
    first = load_secrets(tmp_path)
    assert load_secrets(tmp_path) == first and len(first["token_secret"]) >= 32
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
