"""The one place that owns the database engine and sessions.

Tuned for Lambda: one engine per container, created on first use and reused by warm invocations; a pool of
one connection (a Lambda environment serves one request at a time); a liveness check on every checkout that
replaces a connection the server or a proxy has dropped while the container was frozen.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, exc, make_url
from sqlalchemy.orm import Session, sessionmaker

from pixcrawler import aws, observability, snapstart
from pixcrawler.settings import get_settings


def _secret_url(secret_arn: str, proxy_endpoint: str) -> URL:
    """Build the URL from an RDS-shaped Secrets Manager secret (username, password, host, port, dbname)."""
    secret: dict[str, Any] = json.loads(aws.secret_string(secret_arn))
    return URL.create(
        "postgresql+pg8000",
        username=secret["username"],
        password=secret["password"],
        host=proxy_endpoint or secret["host"],
        port=int(secret.get("port", 5432)),
        database=secret.get("dbname", "postgres"),
    )


def database_url() -> URL:
    """The configured URL: `DATABASE_URL` wins, else the `DB_SECRET_ARN` secret."""
    settings = get_settings()
    if settings.database_url:
        return make_url(settings.database_url)
    if settings.db_secret_arn:
        return _secret_url(settings.db_secret_arn, settings.db_proxy_endpoint)
    raise RuntimeError("Set DATABASE_URL or DB_SECRET_ARN to reach the database")


def _connect_args(url: URL) -> dict[str, Any]:
    """TLS for remote servers with a verifying context built once; none over a unix socket or loopback.

    pg8000 would otherwise load the system CA store on every connect, and its default may fall back to
    plaintext.
    """
    if "unix_sock" in url.query or url.host in (None, "", "localhost", "127.0.0.1", "::1"):
        return {"ssl_context": False}
    ca_bundle = get_settings().db_ca_bundle
    return {"ssl_context": ssl.create_default_context(cafile=ca_bundle or None)}


def _check_liveness(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """Ping on checkout; a failure of any kind makes the pool discard the connection and open a new one."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    except Exception as error:
        raise exc.DisconnectionError(str(error)) from error
    finally:
        with suppress(Exception):  # a dead socket may also refuse the close
            cursor.close()


def build_engine(url: URL | str, **kwargs: Any) -> Engine:
    url = make_url(url)
    engine = create_engine(
        url,
        connect_args=_connect_args(url),
        pool_size=kwargs.pop("pool_size", get_settings().db_pool_size),
        max_overflow=kwargs.pop("max_overflow", 0),
        pool_recycle=kwargs.pop("pool_recycle", get_settings().db_pool_recycle_seconds),
        **kwargs,
    )
    event.listen(engine, "checkout", _check_liveness)
    return engine


@cache
def get_engine() -> Engine:
    return build_engine(database_url())


@cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@snapstart.before_snapshot
def reset(close: bool = True) -> None:
    """Forget the engine (after settings change, or in a forked process), closing its pooled connections; a
    snapshot then holds none."""
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=close)
    get_engine.cache_clear()
    _session_factory.cache_clear()


@snapstart.after_restore
def _forget_after_restore() -> None:
    """Connections carried through a snapshot are sockets to a server that forgot them: drop them unclosed,
    and read the secret again on next use (its password may have been rotated since)."""
    reset(close=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    session = _session_factory()()
    try:
        yield session
        with observability.subsegment("## database commit"):
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
