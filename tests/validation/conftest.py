"""Fixtures the validation worker's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixcrawler import db
from pixcrawler.settings import get_settings


@pytest.fixture
def worker_connections(migrated: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The worker needs connections while the test's own session holds one (the pool default is one per process;
    the concurrency test runs several workers in threads)."""
    monkeypatch.setenv("DB_POOL_SIZE", "8")
    get_settings.cache_clear()
    db.reset()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    db.reset()
