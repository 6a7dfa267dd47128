"""Database errors classified by SQLSTATE.

pg8000 raises a foreign-key violation as `ProgrammingError` rather than `IntegrityError`, so the exception
class cannot be trusted; the SQLSTATE code can.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
CHECK_VIOLATION = "23514"
NOT_NULL_VIOLATION = "23502"
INTEGRITY_VIOLATIONS = frozenset({UNIQUE_VIOLATION, FOREIGN_KEY_VIOLATION, CHECK_VIOLATION, NOT_NULL_VIOLATION})


def of(error: BaseException) -> str | None:
    """The five-character SQLSTATE of a database error, or None when the error did not come from the server."""
    original = error.orig if isinstance(error, DBAPIError) else error
    for arg in getattr(original, "args", ()):
        if isinstance(arg, dict) and "C" in arg:
            return str(arg["C"])
    return getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)


def is_integrity_violation(error: BaseException) -> bool:
    return of(error) in INTEGRITY_VIOLATIONS
