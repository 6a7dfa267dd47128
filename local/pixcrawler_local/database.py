"""The local database: `DATABASE_URL` when given, else an embedded PostgreSQL (pgserver) in the data dir,
migrated with the same Alembic scripts `sam deploy` runs."""

from __future__ import annotations

import os
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
    """Upgrade the database at `url` with the migration hook's own code; the revision it is now at."""
    from pixcrawler.migrations import upgrade_to_head
    from pixcrawler.settings import get_settings

    os.environ["DATABASE_URL"] = url  # upgrade_to_head reads the URL from settings, like every function
    get_settings.cache_clear()
    outcome = upgrade_to_head(repo / "alembic.ini")
    if outcome.ahead:
        return f"{outcome.revision} (newer than this code's migrations: left as it is)"
    return outcome.revision
