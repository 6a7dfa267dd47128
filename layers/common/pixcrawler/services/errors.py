"""Why a service refused a request; the API maps each to an HTTP status, the CLI and workers to a message."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    """Missing, or owned by someone else: the two are deliberately indistinguishable."""

    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """The resource exists but its state does not allow the change (a job still running, nothing to retry)."""

    status = 409
    code = "conflict"


class Unavailable(ServiceError):
    """A dependency (queue, database) refused; nothing was stored, so the client may retry."""

    status = 503
    code = "unavailable"


def found(row: T | None, label: str, ident: int) -> T:
    """The row, or NotFound naming what was asked for (never whose it is)."""
    if row is None:
        raise NotFound(f"{label} {ident} not found.")
    return row
