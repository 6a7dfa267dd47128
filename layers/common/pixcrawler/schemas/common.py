"""Base classes shared by every schema, and the one page shape every list uses."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


class ResponseModel(BaseModel):
    """Read from ORM objects (`from_attributes`)."""

    model_config = ConfigDict(from_attributes=True)


class RequestModel(BaseModel):
    """Unknown fields are errors, not silently dropped: a typo in a rule must not pass as a default."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=5000)]


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


HttpUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$"), BeforeValidator(_strip)]
"""Stripped in Python, not by pydantic: pydantic-core keeps each string under 64 characters that it strips
in a process-wide cache (16,384 slots), so a job's 20,000 short URLs left 1.3 MiB behind in the API's process
for good. A model holding many URLs turns off `str_strip_whitespace` (see `CrawlJobCreate`). The validator
comes last: placed first, it strips the same but drops the pattern from the JSON schema."""


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a keyset-paginated list: pass `next_cursor` back as `cursor` to get the next one."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; absent on the last page")
