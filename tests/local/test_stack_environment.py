"""The settings the local stack gives its functions where they differ from the deployed defaults, and which of
them a user's own environment still decides."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixcrawler.settings import Settings
from pixcrawler_local.stack import LOCAL_EXPORT_PART_SIZE_MB, LocalStack, StackOptions, _reset_layer_caches


@pytest.fixture
def environ() -> Iterator[None]:
    """The process environment as it was, and the layer's caches emptied, once the test has configured a stack."""
    saved = dict(os.environ)
    os.environ.pop("EXPORT_PART_SIZE_MB", None)
    yield
    os.environ.clear()
    os.environ.update(saved)
    _reset_layer_caches()


def configured(tmp_path: Path) -> Settings:
    """What the functions read once a stack has set their environment (its services are not started)."""
    stack = LocalStack(StackOptions(data_dir=tmp_path / "data"))
    stack.secrets = {"download_link_secret": "s" * 32}
    stack.api_url = "http://127.0.0.1:3000"
    stack._configure()
    return Settings()


def test_exports_start_from_the_smallest_part_unless_the_user_says_otherwise(tmp_path: Path, environ: None) -> None:
    default = Settings.model_fields["export_part_size_mb"].default
    assert configured(tmp_path).export_part_size_mb == LOCAL_EXPORT_PART_SIZE_MB == 5 < default
    os.environ["EXPORT_PART_SIZE_MB"] = "12"
    assert configured(tmp_path).export_part_size_mb == 12
