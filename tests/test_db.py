"""The Lambda database module: reuse, liveness after a dropped connection, commit/rollback, secrets."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine, func, select, text

from pixcrawler import db
from pixcrawler.models import Profile
from pixcrawler.settings import get_settings


def test_engine_is_created_once_per_container(engine: Engine) -> None:
    assert db.get_engine() is db.get_engine() is engine
    assert engine.pool.size() == 1


def test_session_scope_commits_on_success_and_rolls_back_on_error(engine: Engine) -> None:
    with db.session_scope() as session:
        session.add(Profile(id=uuid.uuid4(), email="kept@example.com"))
    with pytest.raises(RuntimeError), db.session_scope() as session:
        session.add(Profile(id=uuid.uuid4(), email="lost@example.com"))
        session.flush()
        raise RuntimeError("boom")
    with db.session_scope() as session:
        assert session.scalars(select(Profile.email)).all() == ["kept@example.com"]


def test_a_connection_killed_by_the_server_is_replaced_on_checkout(engine: Engine) -> None:
    """What a frozen Lambda meets after RDS or a proxy dropped its idle connection."""
    with engine.connect() as connection:
        first_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    killer = db.build_engine(engine.url)
    with killer.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
    killer.dispose()
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Profile)) == 0
        assert session.scalar(text("SELECT pg_backend_pid()")) != first_pid


def test_a_connection_older_than_the_recycle_age_is_replaced(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local stack recycles at 30 s, so that no PostgreSQL backend lives through a whole long run."""
    monkeypatch.setenv("DB_POOL_RECYCLE_SECONDS", "1")
    get_settings.cache_clear()
    recycling = db.build_engine(engine.url)
    get_settings.cache_clear()
    try:
        with recycling.connect() as connection:
            first_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with recycling.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() == first_pid
        time.sleep(1.2)
        with recycling.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != first_pid
    finally:
        recycling.dispose()


def test_url_comes_from_an_rds_secret(monkeypatch: pytest.MonkeyPatch, aws: dict[str, Any]) -> None:
    secret = {"username": "app", "password": "p@ss/word", "host": "db.internal", "port": 5433, "dbname": "pix"}
    arn = boto3.client("secretsmanager").create_secret(Name="db", SecretString=json.dumps(secret))["ARN"]
    with monkeypatch.context() as env:
        env.delenv("DATABASE_URL")
        env.setenv("DB_SECRET_ARN", arn)
        env.setenv("DB_PROXY_ENDPOINT", "proxy.internal")
        get_settings.cache_clear()
        url = db.database_url()
    get_settings.cache_clear()
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+pg8000",
        "app",
        "p@ss/word",
        "proxy.internal",
        5433,
        "pix",
    )
