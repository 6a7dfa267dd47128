"""Per-request state: one database session (the request's unit of work) and the caller's identity.

Powertools' `Depends` has no teardown, so a middleware opens the session and a context variable carries it to
the route; the session commits when the route returns and rolls back when it raises.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from sqlalchemy.orm import Session

from pixcrawler.db import session_scope
from pixcrawler.models import Profile
from pixcrawler.services import profiles


class Unauthenticated(Exception):
    """No verified claims, or a subject that is not a profile id."""


@dataclass(slots=True)
class _Request:
    claims: dict[str, Any]
    session: Session
    profile: Profile | None = None


_current: ContextVar[_Request] = ContextVar("pixcrawler_api_request")


def request_scope(app: ApiGatewayResolver, next_middleware: Callable[[ApiGatewayResolver], Response]) -> Response:
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    with session_scope() as session:
        token = _current.set(_Request(claims=claims, session=session))
        try:
            return next_middleware(app)
        finally:
            _current.reset(token)


def session() -> Session:
    return _current.get().session


def current_user() -> Profile:
    """The caller's profile, created on its first request from the claims the gateway verified."""
    request = _current.get()
    if request.profile is None:
        try:
            user_id = uuid.UUID(str(request.claims["sub"]))
        except (KeyError, ValueError) as error:
            raise Unauthenticated("A verified token whose `sub` is a UUID is required.") from error
        email = str(request.claims.get("email") or f"{user_id}@users.invalid")
        request.profile = profiles.ensure(request.session, user_id, email)
    return request.profile


def user_id() -> uuid.UUID:
    return current_user().id
