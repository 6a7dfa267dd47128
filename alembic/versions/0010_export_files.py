"""Exports list their objects: a WebDataset export is several tar shards and a classes file.

`export_jobs.files` holds every object of a finished export in order (name, key, size, sha256 and its download
link). Exports finished before keep working: their one object is listed from `storage_key`, `file_size` and
`download_url`, with its sha256 unknown (it was never computed). A JSONB column with a constant default
rewrites nothing on PostgreSQL 11+; the backfill touches completed exports only.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("export_jobs", sa.Column("files", postgresql.JSONB(), server_default="[]", nullable=False))
    op.execute(
        """
        UPDATE export_jobs
        SET files = jsonb_build_array(jsonb_build_object(
            'name', regexp_replace(storage_key, '^.*/', ''),
            'key', storage_key,
            'size', file_size,
            'sha256', NULL,
            'download_url', download_url
        ))
        WHERE storage_key IS NOT NULL AND file_size IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_column("export_jobs", "files")
