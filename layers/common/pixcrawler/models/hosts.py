"""The state every crawl worker shares about the image hosts it downloads from: budgets and robots.txt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from pixcrawler.models.base import Base, Counter, CreatedAt, UpdatedAt, non_negative


class HostBudget(Base):
    """One image host's admission state (keyed by registrable domain), shared by every worker of every job:
    a token bucket, the concurrency leases held on it, and its pause, backoff and circuit after 429/503s."""

    __tablename__ = "host_budgets"
    __table_args__ = (
        CheckConstraint("rate_factor > 0 AND rate_factor <= 1", name="rate_factor_range"),
        *non_negative("failures", "circuit_opens"),
    )

    host: Mapped[str] = mapped_column(String(253), primary_key=True, doc="Registrable domain, or the IP literal")
    tokens: Mapped[float] = mapped_column(doc="Requests the bucket holds at `refilled_at`")
    refilled_at: Mapped[datetime]
    rate_factor: Mapped[float] = mapped_column(
        default=1.0,
        server_default=text("1"),
        doc="Multiplier of the host's rate: halved by a 429/503 without Retry-After",
    )
    leases: Mapped[dict[str, Any]] = mapped_column(
        default=dict,
        server_default="{}",
        doc="Download slots held: `{lease: {n, until}}` (epoch seconds); an expired lease counts for nothing",
    )
    paused_until: Mapped[datetime | None] = mapped_column(doc="No download starts before this (Retry-After, backoff)")
    failures: Mapped[Counter] = mapped_column(doc="429/503 answers in a row")
    circuit_opens: Mapped[Counter] = mapped_column(doc="Circuits opened in a row: each doubles the cool-down")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class RobotsFile(Base):
    """A host's robots.txt as last fetched (per origin: scheme, host and port), until it expires."""

    __tablename__ = "robots_files"

    origin: Mapped[str] = mapped_column(String(300), primary_key=True, doc="`scheme://host:port`")
    status: Mapped[int] = mapped_column(doc="HTTP status of the fetch; 0 when the host could not be reached")
    body: Mapped[str | None] = mapped_column(Text, doc="The file's text when the fetch succeeded")
    fetched_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
