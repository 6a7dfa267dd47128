"""Indexes for the image list's keyword and validity filters, built without blocking the crawl's inserts.

At 2,000,000 images a keyword or validity filter that matches few images of a 100,000-image job walked the
whole job through `ix_image_crawl_job_id` (26 ms measured by benchmarks/queries.py, against a 5 ms goal).
`CREATE INDEX CONCURRENTLY` cannot run inside a transaction, so each build runs in Alembic's autocommit block;
a plain `CREATE INDEX` would hold off every image insert for the whole build.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_images_crawl_job_id_keyword": ["crawl_job_id", "keyword", "id"],
    "ix_images_crawl_job_id_is_valid": ["crawl_job_id", "is_valid", "id"],
}


def _outside_transaction() -> None:
    """Inside `autocommit_block`, with pg8000: Alembic's isolation-level probe has already begun a transaction
    that switching to autocommit leaves open, and CONCURRENTLY refuses to run in it. End it (a no-op warning
    with drivers that did not begin one)."""
    op.execute("COMMIT")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        _outside_transaction()
        for name, columns in INDEXES.items():
            # A build that failed half-way leaves an INVALID index under this name; drop it and build again.
            op.drop_index(name, table_name="images", if_exists=True, postgresql_concurrently=True)
            op.create_index(name, "images", columns, postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        _outside_transaction()
        for name in INDEXES:
            op.drop_index(name, table_name="images", if_exists=True, postgresql_concurrently=True)
