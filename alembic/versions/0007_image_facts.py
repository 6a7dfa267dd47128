"""Image facts taken at ingest: decodability, mode, EXIF orientation, blank variance and a thumbnail flag.

The crawl decodes each image once as it stores it; validation judges these columns instead of reading and
decoding the object again. Rows from before stay NULL (`decodable IS NULL`) and are validated from S3 as
before. Adding nullable columns (and one with a constant default) rewrites nothing on PostgreSQL 11+.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("images", sa.Column("decodable", sa.Boolean(), nullable=True))
    op.add_column("images", sa.Column("decode_error", postgresql.JSONB(), nullable=True))
    op.add_column("images", sa.Column("mode", sa.String(length=16), nullable=True))
    op.add_column("images", sa.Column("orientation", sa.SmallInteger(), nullable=True))
    op.add_column("images", sa.Column("blank_variance", postgresql.DOUBLE_PRECISION(), nullable=True))
    op.add_column("images", sa.Column("has_thumbnail", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    for name in ("has_thumbnail", "blank_variance", "orientation", "mode", "decode_error", "decodable"):
        op.drop_column("images", name)
