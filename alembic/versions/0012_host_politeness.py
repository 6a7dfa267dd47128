"""Politeness: per-host budgets and robots.txt shared by every crawl worker, deferred chunks, robots per job.

`host_budgets` holds each image host's token bucket, concurrency leases, pause and circuit (one row per
registrable domain); `robots_files` caches robots.txt per origin with an expiry. A chunk put off for a busy host
keeps its untried candidates in `crawl_chunks.pending` and counts `deferrals` (the version its next commit must
find); a job counts deferrals by reason in `crawl_jobs.deferred` and may turn robots.txt off
(`respect_robots`). Columns with constant defaults rewrite nothing on PostgreSQL 11+.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "host_budgets",
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate_factor", sa.Float(), server_default="1", nullable=False),
        sa.Column("leases", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("circuit_opens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("rate_factor > 0 AND rate_factor <= 1", name=op.f("ck_host_budgets_rate_factor_range")),
        sa.CheckConstraint("failures >= 0", name=op.f("ck_host_budgets_failures_non_negative")),
        sa.CheckConstraint("circuit_opens >= 0", name=op.f("ck_host_budgets_circuit_opens_non_negative")),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_host_budgets")),
    )
    op.create_table(
        "robots_files",
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_robots_files")),
    )
    op.add_column("crawl_chunks", sa.Column("deferrals", sa.Integer(), server_default="0", nullable=False))
    op.add_column("crawl_chunks", sa.Column("pending", postgresql.JSONB(), nullable=True))
    op.create_check_constraint("deferrals_non_negative", "crawl_chunks", "deferrals >= 0")
    op.add_column("crawl_jobs", sa.Column("deferred", postgresql.JSONB(), server_default="{}", nullable=False))
    op.add_column("crawl_jobs", sa.Column("respect_robots", sa.Boolean(), server_default="true", nullable=False))


def downgrade() -> None:
    op.drop_column("crawl_jobs", "respect_robots")
    op.drop_column("crawl_jobs", "deferred")
    op.drop_constraint("deferrals_non_negative", "crawl_chunks", type_="check")
    op.drop_column("crawl_chunks", "pending")
    op.drop_column("crawl_chunks", "deferrals")
    op.drop_table("robots_files")
    op.drop_table("host_budgets")
