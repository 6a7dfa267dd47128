"""The migration hook against real PostgreSQL, with a local server standing in for CloudFormation's reply URL."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import ModuleType

import pytest
from sqlalchemy import create_engine, inspect, text

from pixcrawler import custom_resource, db, migrations
from pixcrawler.settings import get_settings
from pixcrawler_local.httphost import HttpHost
from tests.deploy.conftest import REPLY_PATH, custom_resource_event, head_revision, replies
from tests.events import lambda_context


def database_revision(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_create_on_an_empty_database_migrates_to_head_and_replies_success(
    migrate_app: ModuleType, fresh_database: str, reply_host: HttpHost
) -> None:
    event = custom_resource_event("Create", reply_host.url(REPLY_PATH))

    result = migrate_app.lambda_handler(event, lambda_context("migrate"))

    assert result == {"Status": "SUCCESS"}
    assert database_revision(fresh_database) == [head_revision()]
    assert {"projects", "crawl_jobs", "images", "export_jobs"} <= table_names(fresh_database)
    [request] = reply_host.received
    assert request.method == "PUT"
    assert request.headers["Content-Type"] == ""
    assert replies(reply_host) == [
        {
            "Status": "SUCCESS",
            "Reason": "",
            "PhysicalResourceId": "pixcrawler-schema",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": "SchemaMigration",
            "NoEcho": False,
            "Data": {"Revision": head_revision(), "DatabaseAhead": "false"},
        }
    ]


def test_indexes_built_concurrently_outside_the_transaction_are_valid(
    migrate_app: ModuleType, fresh_database: str, reply_host: HttpHost
) -> None:
    """A revision's autocommit block (CREATE INDEX CONCURRENTLY, revision 0005) runs under the hook too."""
    result = migrate_app.lambda_handler(custom_resource_event("Create", reply_host.url(REPLY_PATH)), lambda_context())

    assert result == {"Status": "SUCCESS"}
    engine = create_engine(fresh_database)
    try:
        with engine.connect() as connection:
            indexes = dict(
                connection.execute(
                    text(
                        "SELECT c.relname, i.indisvalid FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
                        " WHERE c.relname IN ('ix_images_crawl_job_id_keyword', 'ix_images_crawl_job_id_is_valid')"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert indexes == {"ix_images_crawl_job_id_keyword": True, "ix_images_crawl_job_id_is_valid": True}


def test_update_at_head_changes_nothing_and_replies_success(
    migrate_app: ModuleType, fresh_database: str, reply_host: HttpHost
) -> None:
    migrate_app.lambda_handler(custom_resource_event("Create", reply_host.url(REPLY_PATH)), lambda_context())
    tables = table_names(fresh_database)

    update = custom_resource_event("Update", reply_host.url(REPLY_PATH))
    assert migrate_app.lambda_handler(update, lambda_context()) == {"Status": "SUCCESS"}

    second = replies(reply_host)[1]
    assert (second["Status"], second["RequestId"], second["PhysicalResourceId"]) == (
        "SUCCESS",
        update["RequestId"],
        "pixcrawler-schema",
    )
    assert second["Data"]["Revision"] == head_revision()
    assert database_revision(fresh_database) == [head_revision()]
    assert table_names(fresh_database) == tables


def test_delete_reports_success_and_leaves_the_database_alone(
    migrate_app: ModuleType, fresh_database: str, reply_host: HttpHost
) -> None:
    migrate_app.lambda_handler(custom_resource_event("Create", reply_host.url(REPLY_PATH)), lambda_context())

    migrate_app.lambda_handler(custom_resource_event("Delete", reply_host.url(REPLY_PATH)), lambda_context())

    assert [reply["Status"] for reply in replies(reply_host)] == ["SUCCESS", "SUCCESS"]
    assert database_revision(fresh_database) == [head_revision()]
    assert "projects" in table_names(fresh_database)


def test_unreachable_database_replies_failed_with_the_reason(
    migrate_app: ModuleType, reply_host: HttpHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+pg8000://nobody:secret@127.0.0.1:9/nowhere")
    get_settings.cache_clear()
    db.reset()
    event = custom_resource_event("Create", reply_host.url(REPLY_PATH))

    result = migrate_app.lambda_handler(event, lambda_context())

    get_settings.cache_clear()
    assert result == {"Status": "FAILED"}
    [reply] = replies(reply_host)
    assert reply["Status"] == "FAILED"
    assert "OperationalError" in reply["Reason"] or "InterfaceError" in reply["Reason"]
    assert "secret" not in reply["Reason"]
    assert (reply["RequestId"], reply["LogicalResourceId"]) == (event["RequestId"], "SchemaMigration")
    assert reply["PhysicalResourceId"] == "SchemaMigration"


def test_database_ahead_of_the_code_is_left_alone_and_reported_success(
    migrate_app: ModuleType, fresh_database: str, reply_host: HttpHost
) -> None:
    """A stack rollback runs the old hook against a database a newer deploy already migrated."""
    migrate_app.lambda_handler(custom_resource_event("Create", reply_host.url(REPLY_PATH)), lambda_context())
    engine = create_engine(fresh_database)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0099'"))
    engine.dispose()

    rollback = custom_resource_event("Update", reply_host.url(REPLY_PATH))
    assert migrate_app.lambda_handler(rollback, lambda_context()) == {"Status": "SUCCESS"}

    assert replies(reply_host)[1]["Data"] == {"Revision": "f00dfeed0099", "DatabaseAhead": "true"}
    assert database_revision(fresh_database) == ["f00dfeed0099"]


def test_concurrent_runs_take_turns_under_the_advisory_lock(
    migrate_app: ModuleType, fresh_database: str, reply_host: HttpHost
) -> None:
    statuses: list[str] = []

    def run() -> None:
        event = custom_resource_event("Create", reply_host.url(REPLY_PATH))
        statuses.append(migrate_app.lambda_handler(event, lambda_context())["Status"])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == ["SUCCESS", "SUCCESS"]
    assert [reply["Data"]["Revision"] for reply in replies(reply_host)] == [head_revision()] * 2
    assert database_revision(fresh_database) == [head_revision()]


def test_a_run_about_to_time_out_replies_failed_once_before_the_deadline(
    migrate_app: ModuleType, fresh_database: str, reply_host: HttpHost
) -> None:
    """Another run holds the lock past this one's time: CloudFormation hears FAILED before Lambda stops it."""
    holder = create_engine(fresh_database)
    connection = holder.connect()
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": migrations.LOCK_KEY})
    results: list[dict[str, str]] = []
    event = custom_resource_event("Create", reply_host.url(REPLY_PATH))
    context = lambda_context(timeout_ms=custom_resource.REPLY_MARGIN_MS + 300)
    started = time.monotonic()
    worker = threading.Thread(target=lambda: results.append(migrate_app.lambda_handler(event, context)))
    worker.start()
    try:
        while not reply_host.received and time.monotonic() - started < 10:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": migrations.LOCK_KEY})
        connection.close()
        holder.dispose()
    worker.join(timeout=60)

    assert 0.2 < elapsed < 5
    [reply] = replies(reply_host)
    assert reply["Status"] == "FAILED"
    assert "before the function times out" in reply["Reason"]
    assert results == [{"Status": "FAILED"}]
    assert len(reply_host.received) == 1


def test_hook_module_keeps_alembic_out_of_the_other_functions() -> None:
    """Only pixcrawler.migrations imports Alembic; the shared modules every function imports do not."""
    code = (
        "import sys, pixcrawler.db, pixcrawler.models, pixcrawler.custom_resource, pixcrawler.links;"
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
