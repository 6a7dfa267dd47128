"""Per-request state: one database session (the request's unit of work) and the caller's identity.

Powertools' `Depends` has no teardown, so a middleware scopes the request and a context variable carries it to
the route. The session opens on first use (docs and token downloads that never touch it need no database)
and commits when the route returns, or rolls back when it raises.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import ExitStack
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
    resources: ExitStack
    session: Session | None = None
    profile: Profile | None = None


_current: ContextVar[_Request] = ContextVar("pixcrawler_api_request")


def request_scope(app: ApiGatewayResolver, next_middleware: Callable[[ApiGatewayResolver], Response]) -> Response:
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    with ExitStack() as resources:
        token = _current.set(_Request(claims=claims, resources=resources))
        try:
            return next_middleware(app)
        finally:
            _current.reset(token)


def session() -> Session:
    request = _current.get()
    if request.session is None:
        request.session = request.resources.enter_context(session_scope())
    return request.session


def current_user() -> Profile:
    """The caller's profile, created on its first request from the claims the gateway verified."""
    request = _current.get()
    if request.profile is None:
        try:
            user_id = uuid.UUID(str(request.claims["sub"]))
        except (KeyError, ValueError) as error:
            raise Unauthenticated("A verified token whose `sub` is a UUID is required.") from error
        email = str(request.claims.get("email") or f"{user_id}@users.invalid")
        request.profile = profiles.ensure(session(), user_id, email)
    return request.profile


def user_id() -> uuid.UUID:
    return current_user().id
