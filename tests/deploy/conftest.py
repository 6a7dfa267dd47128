"""Fixtures for the deployment tests: a throwaway database per test, a stand-in CloudFormation reply URL,
and custom-resource events shaped as CloudFormation sends them."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url, text

from pixcrawler import db
from pixcrawler.settings import get_settings
from pixcrawler_local.httphost import HttpHost, Response
from tests.conftest import ROOT, alembic_config, load_function

REPLY_PATH = "/cloudformation-reply"


@functools.cache
def python312() -> Path:
    """Lambda's CPython (the built layer holds cp312 binary wheels): pyenv's 3.12, else a working python3.12.

    pyenv's shim is on PATH as python3.12 even where it refuses to run, so pyenv's own builds come first.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob("versions/3.12.*/bin/python3.12"))
    if found := shutil.which("python3.12"):
        candidates.append(Path(found))
    for candidate in candidates:
        if subprocess.run([str(candidate), "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    raise AssertionError("CPython 3.12 is needed to build and run the Lambda packages (pyenv install 3.12)")


def custom_resource_event(request_type: str, response_url: str, **extra: Any) -> dict[str, Any]:
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:migrate:live",
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/pixcrawler/1",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "SchemaMigration",
        "ResourceType": "Custom::SchemaMigration",
        "ResourceProperties": {"MigrationsVersion": "1"},
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = "pixcrawler-schema"
    return event | extra


@pytest.fixture
def reply_host() -> Iterator[HttpHost]:
    """Stands in for the presigned S3 URL CloudFormation waits on; keeps every body it receives."""
    with HttpHost() as host:
        host.routes[REPLY_PATH] = Response(b"", 200)
        yield host


def replies(host: HttpHost) -> list[dict[str, Any]]:
    return [json.loads(request.body) for request in host.received if request.path == REPLY_PATH]


@pytest.fixture
def fresh_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database of its own in the session's PostgreSQL, set as DATABASE_URL for the code under test."""
    name = f"deploy_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    db.reset()
    try:
        yield url
    finally:
        db.reset()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        get_settings.cache_clear()


@pytest.fixture
def migrate_app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The hook from the source tree, pointed at the repository's migrations (the build copies them beside it)."""
    module = load_function("migrate")
    monkeypatch.setattr(module, "ALEMBIC_INI", ROOT / "alembic.ini")
    return module


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
