"""Bring the database schema to the head revision shipped with the code, safely under concurrency.

Used by the migration hook that `sam deploy` runs (functions/migrate) and importable anywhere else; Alembic
is imported here only, so functions that never migrate do not pay its import cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from pixcrawler.db import build_engine, database_url

# Any constant works as long as every migration run uses the same one: it names the advisory lock.
LOCK_KEY = 0x50_49_58_4D_49_47  # "PIXMIG"
LOCK_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run found and did; `ahead` means the database carries revisions this code does not know."""

    before: tuple[str, ...]
    after: tuple[str, ...]
    ahead: bool = False

    @property
    def revision(self) -> str:
        return ",".join(self.after) or "base"


def _config(ini_path: Path, connection: Connection) -> Config:
    config = Config(str(ini_path))
    config.attributes["configure_logging"] = False  # fileConfig would silence the Powertools logger
    config.attributes["connection"] = connection
    return config


def _heads(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def _lock(connection: Connection) -> None:
    while not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar_one():
        connection.commit()
        time.sleep(LOCK_POLL_SECONDS)
    connection.commit()


def upgrade_to_head(ini_path: Path) -> Outcome:
    """`alembic upgrade head` while holding a Postgres advisory lock.

    A second run waits for the first and then finds nothing to do. A database already at a revision the
    shipped scripts do not know (the code was rolled back after a newer deploy migrated it) is left alone
    and reported as `ahead`: downgrading is never automatic, and failing would wedge a stack rollback.

    The lock is the session's, not a transaction's, and Alembic owns the transactions: the revisions run in
    one transaction, except that a revision's `autocommit_block` (what `CREATE INDEX CONCURRENTLY` needs)
    commits the work before it and runs outside any transaction, which it cannot do inside a caller's.
    Closing the connection releases the lock even if the unlock is never reached. A run that waits for the
    lock polls for it between transactions rather than blocking inside one: `CREATE INDEX CONCURRENTLY` in
    the run holding the lock waits for every open snapshot, so a waiter blocked in `pg_advisory_lock` would
    deadlock with it.
    """
    engine = build_engine(database_url(), pool_size=1)
    try:
        with engine.connect() as connection:
            _lock(connection)
            try:
                config = _config(ini_path, connection)
                before = _heads(connection)
                script = ScriptDirectory.from_config(config)
                known = {revision.revision for revision in script.walk_revisions()}
                if any(head not in known for head in before):
                    return Outcome(before=before, after=before, ahead=True)
                connection.commit()  # hand Alembic a connection outside any transaction
                command.upgrade(config, "head")
                return Outcome(before=before, after=_heads(connection))
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()
