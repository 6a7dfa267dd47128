"""Validation batches: one row per range of image ids a validation message covers, so redelivery is idempotent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "validation_batches"
COUNTERS = ("image_count", "valid_images", "invalid_images")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "validation_job_id",
            sa.Integer(),
            sa.ForeignKey(
                "validation_jobs.id", ondelete="CASCADE", name="fk_validation_batches_validation_job_id_validation_jobs"
            ),
            nullable=False,
        ),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("first_image_id", sa.Integer(), nullable=False),
        sa.Column("last_image_id", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in COUNTERS),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed', 'cancelled')",
            name="ck_validation_batches_validation_batch_status",
        ),
        sa.CheckConstraint("first_image_id <= last_image_id", name="ck_validation_batches_image_range_ordered"),
        *(
            sa.CheckConstraint(f"{name} >= 0", name=f"ck_validation_batches_{name}_non_negative")
            for name in ("batch_index", *COUNTERS)
        ),
        sa.UniqueConstraint(
            "validation_job_id", "batch_index", name="uq_validation_batches_validation_job_id_batch_index"
        ),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
