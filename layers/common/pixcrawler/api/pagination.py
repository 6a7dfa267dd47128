"""Keyset pagination with opaque cursors: every list has the same shape and deep pages cost what page one does."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from pixcrawler.api.context import session
from pixcrawler.schemas import Page
from pixcrawler.services.errors import ServiceError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_PREFIX = "k1:"

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")]

ItemT = TypeVar("ItemT", bound=BaseModel)


class InvalidCursor(ServiceError):
    code = "invalid_cursor"


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        return int(text.removeprefix(_PREFIX))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidCursor("This cursor was not issued by this API.", field="cursor") from error


def page(
    query: Select[Any],
    key: InstrumentedAttribute[int],
    schema: type[ItemT],
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
    convert: Callable[[Any], ItemT] | None = None,
) -> Page[ItemT]:
    """One page of `query` ordered by `key`; fetching one extra row tells whether another page exists.
    `convert` builds an item from a row when the schema holds more than the row's columns (e.g. links)."""
    if cursor is not None:
        after = decode(cursor)
        query = query.where(key < after if newest_first else key > after)
    rows = session().scalars(query.order_by(key.desc() if newest_first else key).limit(limit + 1)).all()
    items = [(convert or schema.model_validate)(row) for row in rows[:limit]]
    next_cursor = encode(rows[limit - 1].id) if len(rows) > limit else None
    return Page[schema](items=items, next_cursor=next_cursor)  # type: ignore[valid-type]
