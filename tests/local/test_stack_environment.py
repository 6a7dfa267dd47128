"""The settings the local stack gives its functions where they differ from the deployed defaults, and which of
them a user's own environment still decides."""

from __future__ import annotations

import os
from pathlib import Path

from pixcrawler.settings import Settings
from pixcrawler_local.stack import LOCAL_EXPORT_PART_SIZE_MB, LocalStack, StackOptions


def configured(tmp_path: Path) -> Settings:
    """What the functions read once a stack has set their environment (its services are not started)."""
    stack = LocalStack(StackOptions(data_dir=tmp_path / "data"))
    stack.secrets = {"download_link_secret": "s" * 32}
    stack.api_url = "http://127.0.0.1:3000"
    stack._configure()
    return Settings()


def test_exports_start_from_the_smallest_part_unless_the_user_says_otherwise(tmp_path: Path, environ: None) -> None:
    os.environ.pop("EXPORT_PART_SIZE_MB", None)
    default = Settings.model_fields["export_part_size_mb"].default
    assert configured(tmp_path).export_part_size_mb == LOCAL_EXPORT_PART_SIZE_MB == 5 < default
    os.environ["EXPORT_PART_SIZE_MB"] = "12"
    assert configured(tmp_path).export_part_size_mb == 12
