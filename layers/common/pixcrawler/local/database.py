"""The local database: `DATABASE_URL` when given, else an embedded PostgreSQL (pgserver) in the data dir,
migrated with the same Alembic scripts `sam deploy` runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver import PostgresServer


def start_embedded(directory: Path) -> tuple[PostgresServer, str]:
    """Start (or join, if another `pixcrawler` process runs it) the PostgreSQL that keeps its files here."""
    import pgserver

    directory.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(directory, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir or directory
    return server, f"postgresql+pg8000://postgres@/postgres?unix_sock={socket_dir}/.s.PGSQL.5432"


def migrate(repo: Path, url: str) -> str:
    """Upgrade the database at `url` to the newest revision; returns that revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from pixcrawler import db

    config = Config(str(repo / "alembic.ini"))
    config.attributes["configure_logging"] = False
    engine = db.build_engine(url, pool_size=1)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    return str(ScriptDirectory.from_config(config).get_current_head())
