"""State changes that happen once, however many requests or workers ask for them at the same moment.

Reading a row, deciding in Python and writing it back lets every concurrent caller decide on the same stale
read. Instead a change is either one conditional statement (`UPDATE ... WHERE id = :id AND status IN (...)`,
`DELETE ... RETURNING`; a job's status always, see `pixcrawler.lifecycle`): PostgreSQL re-checks the condition
after waiting for a concurrent writer, so exactly one caller matches the row; or, where the decision needs more
than one statement, it is taken on a row locked with `SELECT ... FOR UPDATE` (this module). Only the caller that
changed the row writes its activity entry.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Select


class Lock(enum.Enum):
    SHARE = "share"
    """The row must not change until this transaction ends: it was checked before adding a child to it."""
    UPDATE = "update"
    """This transaction alone decides the row's next state."""


def locked(query: Select[Any], model: type[Any], lock: Lock | None) -> Select[Any]:
    """`query` taking `lock` on `model`'s rows only (not on the rows it joins to check ownership).

    The rows are re-read even when the session already holds them: after waiting for the lock, the decision
    must see what the other transaction committed.
    """
    if lock is None:
        return query
    return query.with_for_update(of=model, read=lock is Lock.SHARE).execution_options(populate_existing=True)


def apply_changes(row: object, fields: dict[str, Any]) -> list[str]:
    """Set the fields whose values differ from `row`'s (locked by the caller); returns their names, sorted.

    Only a real difference is a change: of concurrent identical requests one logs it, the others find it done.
    """
    changed = sorted(name for name, value in fields.items() if getattr(row, name) != value)
    for name in changed:
        setattr(row, name, fields[name])
    return changed
