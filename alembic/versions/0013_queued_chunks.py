"""A crawl job counts the chunk messages it sent (`queued_chunks`) instead of listing their SQS ids.

`task_ids` kept one message id per chunk and only its length was ever read: 391 KiB of JSONB at 10,000 chunks
(a 1,000,000-URL job, benchmarks/scale.py), rewritten whole on every send. The count is what a redelivered
dispatch needs to know whether sending finished. The backfill touches jobs that sent anything.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("crawl_jobs", sa.Column("queued_chunks", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint("queued_chunks_non_negative", "crawl_jobs", "queued_chunks >= 0")
    op.execute("UPDATE crawl_jobs SET queued_chunks = jsonb_array_length(task_ids) WHERE task_ids <> '[]'")
    op.drop_column("crawl_jobs", "task_ids")


def downgrade() -> None:
    """Back to a list whose length is the count (the ids are gone: nulls stand in, and only the length was read)."""
    op.add_column("crawl_jobs", sa.Column("task_ids", postgresql.JSONB(), server_default="[]", nullable=False))
    op.execute(
        "UPDATE crawl_jobs SET task_ids = to_jsonb(array_fill(NULL::text, ARRAY[queued_chunks]))"
        " WHERE queued_chunks > 0"
    )
    op.drop_constraint("queued_chunks_non_negative", "crawl_jobs", type_="check")
    op.drop_column("crawl_jobs", "queued_chunks")
