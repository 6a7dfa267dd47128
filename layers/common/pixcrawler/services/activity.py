"""The activity log: one row per change a user made or a worker finished."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from pixcrawler.models import ActivityLog


def record(
    session: Session,
    user_id: uuid.UUID | None,
    action: str,
    resource_type: str,
    resource_id: int | str,
    **metadata: Any,
) -> ActivityLog:
    """Add an activity row to the caller's transaction, so it commits or rolls back with the change itself."""
    log = ActivityLog(
        user_id=user_id,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id),
        metadata_=metadata,
    )
    session.add(log)
    return log
