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


TAKE = """
CREATE FUNCTION host_budget_take(
    p_host text, p_want bigint, p_held bigint, p_want_slots bigint, p_cap bigint, p_lease text,
    p_until float8, p_burst float8, p_rate float8, p_recovered float8
) RETURNS TABLE (granted bigint, granted_slots bigint, tokens_left float8, factor float8, paused_seconds float8)
LANGUAGE sql AS $take$
WITH p AS (
    SELECT p_host AS key, p_want AS want, p_held AS held, p_want_slots AS want_slots, p_cap AS cap,
        p_lease AS lease, p_until AS until, p_burst AS burst, p_rate AS rate, p_recovered AS recovered
), locked AS (
    SELECT b.*, statement_timestamp() AS t FROM host_budgets b, p WHERE b.host = p.key FOR UPDATE OF b
), state AS (
    SELECT l.host, l.t, l.rate_factor, p.*,
        coalesce(l.paused_until > l.t, false) AS paused,
        extract(epoch FROM l.paused_until - l.t) AS paused_for,
        least(p.burst, l.tokens + p.rate * l.rate_factor * greatest(0, extract(epoch FROM l.t - l.refilled_at)))
            AS available,
        (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(l.leases)
            WHERE (value ->> 'until')::float8 > extract(epoch FROM l.t) AND key <> p.lease) AS others,
        coalesce((l.leases -> p.lease ->> 'n')::int, 0) AS mine
    FROM locked l, p
), slotted AS (
    SELECT s.*, CASE WHEN paused THEN 0 ELSE greatest(0, least(want_slots, cap - mine
        - (SELECT coalesce(sum((value ->> 'n')::int), 0) FROM jsonb_each(others)))) END AS slots
    FROM state s
), granted AS (
    SELECT s.*, CASE WHEN paused THEN 0 ELSE greatest(0, least(want, floor(available)::int, held + slots)) END
        AS tokens
    FROM slotted s
)
UPDATE host_budgets AS h SET
    tokens = g.available - g.tokens,
    refilled_at = g.t,
    leases = g.others || CASE WHEN g.mine + g.slots > 0
        THEN jsonb_build_object(g.lease, jsonb_build_object('n', g.mine + g.slots, 'until', g.until))
        ELSE '{}' END,
    rate_factor = least(1.0, h.rate_factor + g.recovered),
    failures = CASE WHEN g.recovered > 0 THEN 0 ELSE h.failures END,
    circuit_opens = CASE WHEN g.recovered > 0 THEN 0 ELSE h.circuit_opens END,
    updated_at = g.t
FROM granted g
WHERE h.host = g.host
RETURNING g.tokens::bigint, g.slots::bigint, g.available - g.tokens, g.rate_factor, g.paused_for::float8
$take$
"""
"""`pixcrawler.crawl.hosts.take`: grant up to `p_want` tokens and `p_want_slots` more slots of lease `p_lease`
(held until the epoch time `p_until`) from the host's bucket (`p_rate` per second, at most `p_burst`) and its
concurrency cap `p_cap`; tokens never beyond the slots the lease holds (`p_held` plus the new ones). `p_recovered`
is added back to the rate factor, and any recovery clears the failures in a row."""


def upgrade() -> None:
    op.create_table(
        "host_budgets",
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate_factor", sa.Float(), server_default=sa.text("1"), nullable=False),
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
    op.add_column(
        "crawl_jobs", sa.Column("respect_robots", sa.Boolean(), server_default=sa.text("true"), nullable=False)
    )
    op.execute(TAKE)


def downgrade() -> None:
    op.execute("DROP FUNCTION host_budget_take")
    op.drop_column("crawl_jobs", "respect_robots")
    op.drop_column("crawl_jobs", "deferred")
    op.drop_constraint("deferrals_non_negative", "crawl_chunks", type_="check")
    op.drop_column("crawl_chunks", "pending")
    op.drop_column("crawl_chunks", "deferrals")
    op.drop_table("robots_files")
    op.drop_table("host_budgets")
