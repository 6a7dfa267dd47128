"""The embedded PostgreSQL of the local stack: a new data dir is a copy of the migrated template, and every
start applies the stack's settings, to data dirs made before a setting existed too."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from pixcrawler.settings import get_settings
from pixcrawler_local import database

REPO = Path(__file__).resolve().parents[2]


def _ask(url: str, query: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.scalar(text(query)))
    finally:
        engine.dispose()


def test_new_data_dirs_copy_the_migrated_template_and_get_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DATABASE_URL", "")  # building the template points it at the template: restored after
    head = ScriptDirectory.from_config(Config(str(REPO / "alembic.ini"))).get_current_head()
    started = []
    try:
        for name in ("first", "second"):
            server, url = database.start_embedded(tmp_path / name, REPO)
            started.append(server)
            assert {name: _ask(url, f"SHOW {name}") for name in database.SETTINGS} == database.SETTINGS
            assert _ask(url, "SELECT version_num FROM alembic_version") == head  # migrated before it was copied
        assert len(list((tmp_path / "cache" / "pixcrawler" / "postgres-templates").iterdir())) == 1

        server = started.pop()
        server.cleanup()
        conf = tmp_path / "second" / "postgresql.auto.conf"
        conf.write_text("".join(line for line in conf.read_text().splitlines(True) if "shared_buffers" not in line))
        server, url = database.start_embedded(tmp_path / "second", REPO)
        started.append(server)
        assert _ask(url, "SHOW shared_buffers") == database.SETTINGS["shared_buffers"]
    finally:
        for server in started:
            server.cleanup()
        get_settings.cache_clear()
