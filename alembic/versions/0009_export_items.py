"""Export items: per image, what a transformed export wrote (output size, format, bytes, hash).

The manifest written at the end of an export, possibly in a later invocation, reads them. A new table: nothing
existing is rewritten.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_job_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("width >= 0", name=op.f("ck_export_items_width_non_negative")),
        sa.CheckConstraint("height >= 0", name=op.f("ck_export_items_height_non_negative")),
        sa.CheckConstraint("file_size >= 0", name=op.f("ck_export_items_file_size_non_negative")),
        sa.ForeignKeyConstraint(
            ["export_job_id"],
            ["export_jobs.id"],
            name=op.f("fk_export_items_export_job_id_export_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_items")),
        sa.UniqueConstraint("export_job_id", "image_id", name=op.f("uq_export_items_export_job_id_image_id")),
    )


def downgrade() -> None:
    op.drop_table("export_items")
