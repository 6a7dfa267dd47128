"""Export split counts: images per split and label of an export with `splits`.

Known when the export is planned and shown in its response; a nullable column (NULL without splits), so adding
it rewrites nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("export_jobs", sa.Column("split_counts", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("export_jobs", "split_counts")
