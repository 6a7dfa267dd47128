"""Fixtures of the local stack's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pixcrawler_local.stack import _reset_layer_caches


@pytest.fixture
def environ() -> Iterator[None]:
    """The process environment as it was, and the layer's caches emptied, once a test has configured a stack
    (a stack sets the functions' variables in its own process)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    _reset_layer_caches()
