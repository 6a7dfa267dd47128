from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from sqlalchemy import select

from pixcrawler.api import pagination
from pixcrawler.api.context import user_id
from pixcrawler.models import ActivityLog
from pixcrawler.schemas import ActivityLogResponse, Page

router = APIGatewayHttpRouter()


@router.get("/activity", tags=["activity"])
def list_activity(
    limit: pagination.Limit = pagination.DEFAULT_LIMIT, cursor: pagination.Cursor = None
) -> Page[ActivityLogResponse]:
    """The caller's activity, newest first."""
    query = select(ActivityLog).where(ActivityLog.user_id == user_id())
    return pagination.page(query, ActivityLog.id, ActivityLogResponse, limit, cursor, newest_first=True)
