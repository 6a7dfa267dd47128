"""Check constraints get the names the models declare.

Revisions 0001 and 0002 passed names that already carried the `ck_<table>_` prefix while the target metadata's
naming convention (`ck_%(table_name)s_%(constraint_name)s`) added it again, so every database migrated so far
holds `ck_crawl_jobs_ck_crawl_jobs_progress_range`, and names past PostgreSQL's 63 characters were cut and
given a hash suffix by SQLAlchemy. Alembic's autogenerate compares no check constraints, so nothing noticed
until docs/generate_schema.py compared the reflected schema with the models. Renaming is a catalog change:
it takes a brief lock and rewrites no rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import hashlib
from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_IDENTIFIER = 63
NON_NEGATIVE = "non_negative"

NAMES = {
    "profiles": ("profile_role",),
    "projects": ("project_status",),
    "crawl_jobs": (
        "crawl_job_status",
        "max_images_positive",
        "progress_range",
        *(
            f"{column}_{NON_NEGATIVE}"
            for column in (
                "active_chunks",
                "completed_chunks",
                "downloaded_images",
                "failed_chunks",
                "total_chunks",
                "total_images",
                "valid_images",
            )
        ),
    ),
    "crawl_chunks": (
        "crawl_chunk_status",
        *(
            f"{column}_{NON_NEGATIVE}"
            for column in ("attempts", "chunk_index", "downloaded", "failed", "found", "page", "skipped")
        ),
    ),
    "images": tuple(f"{column}_{NON_NEGATIVE}" for column in ("file_size", "height", "width")),
    "validation_jobs": (
        "validation_job_status",
        "progress_range",
        *(
            f"{column}_{NON_NEGATIVE}"
            for column in (
                "completed_batches",
                "invalid_images",
                "total_batches",
                "total_images",
                "validated_images",
            )
        ),
    ),
    "validation_batches": (
        "validation_batch_status",
        "image_range_ordered",
        *(f"{column}_{NON_NEGATIVE}" for column in ("batch_index", "image_count", "invalid_images", "valid_images")),
    ),
    "export_jobs": (
        "export_job_status",
        "progress_range",
        *(f"{column}_{NON_NEGATIVE}" for column in ("exported_images", "file_size", "total_images")),
    ),
}
"""Every check constraint of 0001 and 0002, by table, without its `ck_<table>_` prefix."""


def _created(name: str) -> str:
    """The name 0001/0002 actually created: SQLAlchemy cuts a long name and appends 4 hex digits of its md5."""
    if len(name) <= MAX_IDENTIFIER:
        return name
    return name[: MAX_IDENTIFIER - 8] + "_" + hashlib.md5(name.encode()).hexdigest()[-4:]


def _renames() -> list[tuple[str, str, str]]:
    renames = []
    for table, names in NAMES.items():
        for name in names:
            intended = f"ck_{table}_{name}"
            renames.append((table, _created(f"ck_{table}_{intended}"), intended))
    return renames


def upgrade() -> None:
    for table, created, intended in _renames():
        op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{created}" TO "{intended}"')


def downgrade() -> None:
    for table, created, intended in _renames():
        op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{intended}" TO "{created}"')
