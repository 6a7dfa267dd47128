from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixcrawler.models.base import Base

if TYPE_CHECKING:
    from pixcrawler.models.profile import Profile


class ActivityLog(Base):
    """An audit row; it outlives its user (SET NULL) so deletions stay on record."""

    __tablename__ = "activity_logs"
    __table_args__ = (
        Index(
            "ix_activity_log_user_id",
            "user_id",
            "id",
            info={
                "serves": "`GET /v1/activity` newest first by keyset (`user_id = ? AND id < ? ORDER BY id DESC`), "
                "and the SET NULL from `profiles`."
            },
        ),
        Index(
            "ix_activity_log_timestamp",
            "timestamp",
            info={
                "serves": "No product statement: operators' time-range reads of the audit trail "
                "(`timestamp >= ?`), e.g. for retention. Kept from the original brief; see SCHEMA_DECISIONS.md."
            },
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("profiles.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(Text)
    resource_type: Mapped[str | None] = mapped_column(String(50))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict, server_default="{}")
    timestamp: Mapped[datetime] = mapped_column(server_default=func.now())

    user: Mapped[Profile | None] = relationship(back_populates="activity_logs")
