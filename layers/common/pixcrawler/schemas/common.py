"""Base classes shared by every schema, and the one page shape every list uses."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class ResponseModel(BaseModel):
    """Read from ORM objects (`from_attributes`)."""

    model_config = ConfigDict(from_attributes=True)


class RequestModel(BaseModel):
    """Unknown fields are errors, not silently dropped: a typo in a rule must not pass as a default."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=5000)]
HttpUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048, pattern=r"^https?://\S+$")]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a keyset-paginated list: pass `next_cursor` back as `cursor` to get the next one."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; absent on the last page")
