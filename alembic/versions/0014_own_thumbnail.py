"""An original small enough to be its own thumbnail is stored once: `images.thumbnail_format = 'original'`.

Such an original (a JPEG or WebP of at most 256 px a side, upright, at most 48 KiB) was stored twice, the
second time at `<original>.thumb.jpg` or `.thumb.webp`, a copy of the same bytes: a second PUT at ingest
(about 0.2 ms of the crawl's CPU) and a second object. Rows stored before keep their copies (`jpeg`/`webp`):
nothing is rewritten, so the upgrade only widens the check. Code from before this revision cannot read an
`original` row's preview: roll the code back past it only after `alembic downgrade 0013`.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("thumbnail_format_known", "images", type_="check")
    op.create_check_constraint(
        "thumbnail_format_known",
        "images",
        "thumbnail_format IS NULL OR thumbnail_format IN ('jpeg', 'webp', 'original')",
    )


def downgrade() -> None:
    """The old code knows no `original`: those rows lose their preview link (never their image)."""
    op.execute("UPDATE images SET thumbnail_format = NULL WHERE thumbnail_format = 'original'")
    op.drop_constraint("thumbnail_format_known", "images", type_="check")
    op.create_check_constraint(
        "thumbnail_format_known", "images", "thumbnail_format IS NULL OR thumbnail_format IN ('jpeg', 'webp')"
    )
