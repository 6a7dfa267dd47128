"""Initial schema: profiles, projects, crawl jobs and their chunks, images, validation and export jobs,
activity logs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import SchemaItem

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_STATUSES = ("pending", "running", "completed", "failed", "cancelled")


def timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def counters(table: str, *names: str) -> list[SchemaItem]:
    """Integer counters that start at zero, each with a CHECK that it never goes negative."""
    columns: list[SchemaItem] = [sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in names]
    checks = [sa.CheckConstraint(f"{name} >= 0", name=f"ck_{table}_{name}_non_negative") for name in names]
    return columns + checks


def progress(table: str) -> list[SchemaItem]:
    return [
        sa.Column("progress", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=f"ck_{table}_progress_range"),
    ]


def status(table: str, name: str, values: Sequence[str], default: str) -> list[SchemaItem]:
    allowed = ", ".join(f"'{value}'" for value in values)
    return [
        sa.Column("status", sa.String(20), server_default=default, nullable=False),
        sa.CheckConstraint(f"status IN ({allowed})", name=f"ck_{table}_{name}"),
    ]


def job_window() -> list[sa.Column]:
    return [
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    ]


def parent(table: str, column: str, target: str, ondelete: str, *, nullable: bool = False) -> sa.Column:
    """A foreign key column; profiles are keyed by UUID, everything else by integer."""
    target_table = target.split(".")[0]
    return sa.Column(
        column,
        sa.Uuid() if target_table == "profiles" else sa.Integer(),
        sa.ForeignKey(target, ondelete=ondelete, name=f"fk_{table}_{column}_{target_table}"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(200)),
        sa.Column("avatar_url", sa.Text()),
        sa.Column("role", sa.String(20), server_default="user", nullable=False),
        sa.CheckConstraint("role IN ('user', 'admin')", name="ck_profiles_profile_role"),
        *timestamps(),
    )
    op.create_index("ix_profiles_email", "profiles", ["email"], unique=True)

    op.create_table(
        "activity_logs",
        sa.Column("id", sa.Integer(), primary_key=True),
        parent("activity_logs", "user_id", "profiles.id", "SET NULL", nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.String(50)),
        sa.Column("resource_id", sa.String(64)),
        sa.Column("metadata", JSONB(), server_default="{}", nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_activity_log_user_id", "activity_logs", ["user_id", "id"])
    op.create_index("ix_activity_log_timestamp", "activity_logs", ["timestamp"])

    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text()),
        parent("projects", "user_id", "profiles.id", "CASCADE"),
        *status("projects", "project_status", ("active", "archived"), "active"),
        *timestamps(),
    )
    op.create_index("ix_project_user_id", "projects", ["user_id", "id"])

    op.create_table(
        "crawl_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        parent("crawl_jobs", "project_id", "projects.id", "CASCADE"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("keywords", JSONB(), nullable=False),
        sa.Column("providers", JSONB(), server_default="[]", nullable=False),
        sa.Column("urls", JSONB()),
        sa.Column("max_images", sa.Integer(), nullable=False),
        sa.CheckConstraint("max_images >= 1", name="ck_crawl_jobs_max_images_positive"),
        *status("crawl_jobs", "crawl_job_status", JOB_STATUSES, "pending"),
        *progress("crawl_jobs"),
        *counters(
            "crawl_jobs",
            "total_images",
            "downloaded_images",
            "valid_images",
            "total_chunks",
            "active_chunks",
            "completed_chunks",
            "failed_chunks",
        ),
        *job_window(),
        sa.Column("task_ids", JSONB(), server_default="[]", nullable=False),
        sa.Column("error_message", sa.Text()),
        *timestamps(),
    )
    op.create_index("ix_crawl_jobs_project_id", "crawl_jobs", ["project_id"])
    op.create_index("ix_crawl_job_status", "crawl_jobs", ["status"])
    op.create_index("ix_crawl_job_project_status", "crawl_jobs", ["project_id", "status"])

    op.create_table(
        "crawl_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        parent("crawl_chunks", "crawl_job_id", "crawl_jobs.id", "CASCADE"),
        sa.Column("keyword", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("page", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint("page >= 0", name="ck_crawl_chunks_page_non_negative"),
        sa.Column("cursor", sa.Text()),
        sa.Column("urls", JSONB()),
        *status("crawl_chunks", "crawl_chunk_status", JOB_STATUSES, "pending"),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.CheckConstraint("chunk_index >= 0", name="ck_crawl_chunks_chunk_index_non_negative"),
        *counters("crawl_chunks", "attempts", "found", "downloaded", "skipped", "failed"),
        sa.Column("last_error", sa.Text()),
        *job_window(),
        *timestamps(),
        sa.UniqueConstraint("crawl_job_id", "chunk_index", name="uq_crawl_chunks_crawl_job_id_chunk_index"),
    )
    op.create_index("ix_crawl_chunk_status_updated", "crawl_chunks", ["status", "updated_at"])

    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), primary_key=True),
        parent("images", "crawl_job_id", "crawl_jobs.id", "CASCADE"),
        sa.Column("original_url", sa.Text(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("storage_url", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("file_size", sa.BigInteger()),
        sa.Column("format", sa.String(16)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("phash", sa.BigInteger()),
        sa.Column("keyword", sa.String(200)),
        sa.Column("provider", sa.String(40)),
        sa.Column("source_url", sa.Text()),
        sa.Column("title", sa.Text()),
        sa.Column("license", sa.String(100)),
        sa.Column("license_url", sa.Text()),
        sa.Column("creator", sa.Text()),
        sa.Column("is_valid", sa.Boolean()),
        sa.Column("validation_errors", JSONB()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *(
            sa.CheckConstraint(f"{name} >= 0", name=f"ck_images_{name}_non_negative")
            for name in ("width", "height", "file_size")
        ),
        sa.UniqueConstraint("crawl_job_id", "sha256", name="uq_images_crawl_job_id_sha256"),
    )
    op.create_index("ix_image_crawl_job_id", "images", ["crawl_job_id", "id"])

    op.create_table(
        "validation_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        parent("validation_jobs", "crawl_job_id", "crawl_jobs.id", "CASCADE"),
        sa.Column("name", sa.String(200), nullable=False),
        *status("validation_jobs", "validation_job_status", JOB_STATUSES, "pending"),
        *progress("validation_jobs"),
        *counters(
            "validation_jobs",
            "total_images",
            "validated_images",
            "invalid_images",
            "total_batches",
            "completed_batches",
        ),
        sa.Column("validation_rules", JSONB(), server_default="{}", nullable=False),
        *job_window(),
        sa.Column("error_message", sa.Text()),
        *timestamps(),
    )
    op.create_index("ix_validation_jobs_crawl_job_id", "validation_jobs", ["crawl_job_id"])
    op.create_index("ix_validation_job_status", "validation_jobs", ["status"])

    op.create_table(
        "export_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        parent("export_jobs", "crawl_job_id", "crawl_jobs.id", "CASCADE"),
        parent("export_jobs", "user_id", "profiles.id", "CASCADE"),
        sa.Column("name", sa.String(200), nullable=False),
        *status("export_jobs", "export_job_status", JOB_STATUSES, "pending"),
        *progress("export_jobs"),
        sa.Column("format", sa.String(16), nullable=False),
        *counters("export_jobs", "total_images", "exported_images"),
        sa.Column("file_size", sa.BigInteger()),
        sa.CheckConstraint("file_size >= 0", name="ck_export_jobs_file_size_non_negative"),
        sa.Column("download_url", sa.Text()),
        sa.Column("export_options", JSONB(), server_default="{}", nullable=False),
        sa.Column("storage_key", sa.Text()),
        sa.Column("checkpoint", JSONB()),
        *job_window(),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("error_message", sa.Text()),
        *timestamps(),
    )
    op.create_index("ix_export_jobs_crawl_job_id", "export_jobs", ["crawl_job_id"])
    op.create_index("ix_export_job_user_id", "export_jobs", ["user_id", "id"])
    op.create_index("ix_export_job_status", "export_jobs", ["status"])


def downgrade() -> None:
    for table in (
        "export_jobs",
        "validation_jobs",
        "images",
        "crawl_chunks",
        "crawl_jobs",
        "projects",
        "activity_logs",
        "profiles",
    ):
        op.drop_table(table)
