"""State changes that happen once, however many requests or workers ask for them at the same moment.

Reading a row, deciding in Python and writing it back lets every concurrent caller decide on the same stale
read. Instead a change is either one conditional statement (`UPDATE ... WHERE id = :id AND status IN (...)`,
`DELETE ... RETURNING`): PostgreSQL re-checks the condition after waiting for a concurrent writer, so exactly
one caller matches the row; or, where the decision needs more than one statement, it is taken on a row locked
with `SELECT ... FOR UPDATE`. Only the caller that changed the row writes its activity entry.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from typing import Any, TypeVar

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from pixcrawler.models import CrawlJob, ExportJob, JobStatus
from pixcrawler.services.errors import NotFound

Job = TypeVar("Job", CrawlJob, ExportJob)


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


def transition(session: Session, row: Job, allowed: Collection[JobStatus], label: str, **values: Any) -> bool:
    """Set `values` on `row` only while its status is one of `allowed`; False when another caller moved it
    first. Either way `row` is refreshed to what is now stored; NotFound when it has been deleted meanwhile."""
    model, ident = type(row), row.id
    moved = session.execute(
        update(model)
        .where(model.id == ident, model.status.in_(allowed))
        .values(**values)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).first()
    current = session.scalars(select(model).where(model.id == ident).execution_options(populate_existing=True))
    if current.one_or_none() is None:
        raise NotFound(f"{label} {ident} not found.")
    return moved is not None


def apply_changes(row: object, fields: dict[str, Any]) -> list[str]:
    """Set the fields whose values differ from `row`'s (locked by the caller); returns their names, sorted.

    Only a real difference is a change: of concurrent identical requests one logs it, the others find it done.
    """
    changed = sorted(name for name, value in fields.items() if getattr(row, name) != value)
    for name in changed:
        setattr(row, name, fields[name])
    return changed
