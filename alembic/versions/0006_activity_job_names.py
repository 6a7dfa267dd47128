"""Rename the export worker's activity rows into the `<kind>.<event>` scheme every job kind now uses.

The export worker wrote `export.completed` and `export.failed` while the API wrote `export_job.started` (and
crawl and validation jobs `crawl_job.*`, `validation_job.*`). `GET /v1/activity` shows old and new rows side by
side, so the old rows take the new names; a downgrade gives the old code its names back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMED = {"export.completed": "export_job.completed", "export.failed": "export_job.failed"}
RENAME = sa.text("UPDATE activity_logs SET action = :new WHERE action = :old")


def upgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(RENAME.bindparams(old=old, new=new))


def downgrade() -> None:
    for old, new in RENAMED.items():
        op.execute(RENAME.bindparams(old=new, new=old))
