"""Refusal counts: why candidates were not stored, `{code: count}`, on each crawl chunk and crawl job.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("crawl_chunks", "crawl_jobs")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("refused", JSONB(), server_default="{}", nullable=False))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "refused")
