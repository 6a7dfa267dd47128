"""The local database: `DATABASE_URL` when given, else an embedded PostgreSQL (pgserver) in the data dir,
migrated with the same Alembic scripts `sam deploy` runs.

A new data dir's database starts as a copy of a template kept in the user's cache: a cluster made by `initdb`
and migrated to the newest revision once per set of migrations (its name carries their hash). `initdb` and
the migrations cost 3-7 s on this 2-core machine; copying the template's 40 MB costs a fraction of a second,
and the migration run that follows finds nothing to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver import PostgresServer


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pixcrawler"


SETTINGS = {"shared_buffers": "4MB", "wal_buffers": "1MB", "default_statistics_target": "10"}
"""Where the embedded server departs from PostgreSQL's defaults. Its shared buffers fill as a job's rows are
written and read, so the stack's memory grew with the job: with the default 128 MB, PostgreSQL's share was
35 MiB at 2,000 photos and 69 MiB at 20,000; with 32 MB, 34 and 64 (`benchmarks/pipeline.py`); with 8 MB, 29
and 33-36, the buffers full only past 2,000 photos. A development stack's rows stay in the kernel's page cache,
which no process is charged for, and 4 MB of buffers are full at either size (29 and 30 MiB, as fast). The WAL
buffers stay at the 1 MB that 32 MB of shared buffers gave them (PostgreSQL sizes them at 1/32 of the shared
buffers): commits write as before. ANALYZE (autovacuum's, as a job's rows
arrive) holds a sample of 300 rows per unit of the statistics target in memory: 30,000 at the default 100, so
at 20,000 images every row, 17 MB more in that backend than at 2,000; at 10 it samples 3,000 rows at any size,
ample for the few indexed columns a local dataset's queries filter on."""


def exists(directory: Path) -> bool:
    """Whether a cluster keeps its files here (else `start_embedded` makes one)."""
    return (directory / "PG_VERSION").exists()


def start_embedded(directory: Path, repo: Path | None = None) -> tuple[PostgresServer, str]:
    """Start (or join, if another `pixcrawler` process runs it) the PostgreSQL that keeps its files here; a
    new one is a copy of the migrations' template when `repo` (where the migrations are) is given."""
    if repo is not None and not exists(directory):
        _copy_owned(_template(repo), directory)
    _configure(directory)
    return _start(directory)


def _configure(directory: Path) -> None:
    """Put `SETTINGS` in `postgresql.auto.conf`, which PostgreSQL reads at every start after `postgresql.conf`
    (data dirs made before a setting existed get it at their next start)."""
    path = directory / "postgresql.auto.conf"
    if not path.exists():
        return  # not a cluster yet: pgserver's initdb makes one, configured from the next start on
    kept = [line for line in path.read_text().splitlines() if line.partition("=")[0].strip() not in SETTINGS]
    path.write_text("\n".join([*kept, *(f"{name} = '{value}'" for name, value in SETTINGS.items())]) + "\n")


def _copy_owned(source: Path, target: Path) -> None:
    """Copy a cluster keeping each file's owner: as root, pgserver runs PostgreSQL as its own system user,
    which must own the files. The server log stays behind."""
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("log"))
    for copied in (target, *target.rglob("*")):
        stat = (source / copied.relative_to(target)).stat()
        os.chown(copied, stat.st_uid, stat.st_gid)


def _start(directory: Path) -> tuple[PostgresServer, str]:
    import pgserver

    directory.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(directory, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir or directory
    return server, f"postgresql+pg8000://postgres@/postgres?unix_sock={socket_dir}/.s.PGSQL.5432"


def _template(repo: Path) -> Path:
    """The stopped, migrated cluster for this PostgreSQL build and these migrations; made on first use, in a
    temporary directory renamed into place, so concurrent first runs cannot see half of one."""
    digest = hashlib.sha256(version("pgserver").encode())
    for script in sorted((repo / "alembic" / "versions").glob("*.py")):
        digest.update(script.name.encode() + b"\0" + script.read_bytes())
    template = cache_dir() / "postgres-templates" / digest.hexdigest()[:16]
    if not template.is_dir():
        template.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=template.parent))
        server, url = _start(building / "data")
        try:
            migrate(repo, url)
        finally:
            server.cleanup()
        with contextlib.suppress(OSError):  # another process made it first
            (building / "data").rename(template)
        shutil.rmtree(building, ignore_errors=True)
    return template


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
