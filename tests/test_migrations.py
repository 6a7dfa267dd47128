"""The Alembic history creates exactly the models' schema, and can be taken down and rebuilt."""

from __future__ import annotations

import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

from pixcrawler.models import Base
from tests import factories
from tests.conftest import alembic_config

TABLES = {
    "profiles",
    "projects",
    "crawl_jobs",
    "crawl_chunks",
    "images",
    "activity_logs",
    "validation_jobs",
    "validation_batches",
    "export_jobs",
    "export_items",
}
NAMED_INDEXES = {
    "profiles": {"ix_profiles_email"},
    "projects": {"ix_project_user_id"},
    "crawl_jobs": {"ix_crawl_jobs_project_id", "ix_crawl_job_status", "ix_crawl_job_project_status"},
    "images": {"ix_image_crawl_job_id"},
    "activity_logs": {"ix_activity_log_user_id", "ix_activity_log_timestamp"},
    "validation_jobs": {"ix_validation_job_status", "ix_validation_jobs_crawl_job_id"},
    "export_jobs": {"ix_export_job_status", "ix_export_job_user_id", "ix_export_jobs_crawl_job_id"},
}


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_head_matches_models_exactly(engine: Engine) -> None:
    assert schema_diff(engine) == []


def test_every_table_and_named_index_exists(engine: Engine) -> None:
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) >= TABLES
    for table, expected in NAMED_INDEXES.items():
        assert expected <= {index["name"] for index in inspector.get_indexes(table)}, table


def test_every_foreign_key_column_leads_an_index(engine: Engine) -> None:
    """Cascading deletes scan the child table by the FK column; without an index that is a full scan."""
    inspector = inspect(engine)
    for table in TABLES:
        leading = {index["column_names"][0] for index in inspector.get_indexes(table)}
        leading |= {unique["column_names"][0] for unique in inspector.get_unique_constraints(table)}
        for foreign_key in inspector.get_foreign_keys(table):
            assert foreign_key["constrained_columns"][0] in leading, (table, foreign_key["constrained_columns"])


def test_downgrade_removes_everything_and_upgrade_rebuilds(engine: Engine) -> None:
    config = alembic_config()
    engine.dispose()
    command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert schema_diff(engine) == []


def _actions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT action FROM activity_logs ORDER BY id")))


def test_0006_renames_the_export_workers_activity_rows_and_back(engine: Engine) -> None:
    """`GET /v1/activity` shows rows written before and after the lifecycle module under one naming scheme."""
    config = alembic_config()
    engine.dispose()
    command.downgrade(config, "0005")
    with engine.begin() as connection:
        for action in ("export_job.started", "export.completed", "export.failed", "crawl_job.completed"):
            connection.execute(
                text("INSERT INTO activity_logs (action, resource_type, resource_id) VALUES (:a, 'export_job', '1')"),
                {"a": action},
            )
    command.upgrade(config, "head")
    renamed = ["export_job.started", "export_job.completed", "export_job.failed", "crawl_job.completed"]
    assert _actions(engine) == renamed
    command.downgrade(config, "0005")
    assert _actions(engine) == ["export_job.started", "export.completed", "export.failed", "crawl_job.completed"]
    command.upgrade(config, "head")


def test_0010_lists_the_one_object_of_exports_finished_before_it(engine: Engine) -> None:
    """Exports finished before exports had several objects keep their link and size in `files`; sha256 unknown."""
    config, job_id, user_id = _job_at(engine, "0009")
    with engine.begin() as connection:
        finished = ("exports/1/1-ab/cats.zip", 42, "https://api.example.com/v1/downloads/t")
        for storage_key, size, url in (finished, (None, None, None)):
            connection.execute(
                text(
                    "INSERT INTO export_jobs (crawl_job_id, user_id, name, format, storage_key, file_size,"
                    " download_url) VALUES (:job, :user, 'e', 'zip', :key, :size, :url)"
                ),
                {"job": job_id, "user": user_id, "key": storage_key, "size": size, "url": url},
            )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        listed = list(connection.scalars(text("SELECT files FROM export_jobs ORDER BY id")))
    assert listed == [
        [
            {
                "name": "cats.zip",
                "key": "exports/1/1-ab/cats.zip",
                "size": 42,
                "sha256": None,
                "download_url": "https://api.example.com/v1/downloads/t",
            }
        ],
        [],
    ]


def test_0011_keeps_the_webp_thumbnails_stored_before_it(engine: Engine) -> None:
    """Rows with a thumbnail from before JPEG previews still name their `.thumb.webp` key; rows without stay without."""
    config, job_id, _ = _job_at(engine, "0010")
    with engine.begin() as connection:
        for sha, has_thumbnail in (("a" * 64, True), ("b" * 64, False)):
            connection.execute(
                text(
                    "INSERT INTO images (crawl_job_id, original_url, filename, storage_url, sha256, has_thumbnail)"
                    " VALUES (:job, 'https://e.com/x.jpg', 'x.jpg', 'k.jpg', :sha, :thumbnail)"
                ),
                {"job": job_id, "sha": sha, "thumbnail": has_thumbnail},
            )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        formats = list(connection.scalars(text("SELECT thumbnail_format FROM images ORDER BY sha256")))
    assert formats == ["webp", None]
    command.downgrade(config, "0010")
    with engine.connect() as connection:
        flags = list(connection.scalars(text("SELECT has_thumbnail FROM images ORDER BY sha256")))
    assert flags == [True, False]
    command.upgrade(config, "head")


def _job_at(engine: Engine, revision: str) -> tuple[Config, int, uuid.UUID]:
    """The schema taken down to `revision`, with one crawl job in it: its id and its owner's. The job is made
    at head, before the downgrade: the models may have columns `revision` lacks."""
    config = alembic_config()
    with Session(engine) as session:
        job = factories.crawl_job(session)
        session.commit()
        job_id, user_id = job.id, job.project.user_id
    engine.dispose()
    command.downgrade(config, revision)
    return config, job_id, user_id


def test_0013_counts_the_messages_a_job_sent_and_back(engine: Engine) -> None:
    """A job's sent chunk messages survive as a count: a redelivered dispatch still knows sending finished."""
    config, job_id, _ = _job_at(engine, "0012")
    with engine.begin() as connection:
        connection.execute(
            text("""UPDATE crawl_jobs SET task_ids = '["a", "b", "c"]' WHERE id = :id"""), {"id": job_id}
        )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT queued_chunks FROM crawl_jobs WHERE id = :id"), {"id": job_id}) == 3
    command.downgrade(config, "0012")
    with engine.connect() as connection:
        sent = connection.scalar(
            text("SELECT jsonb_array_length(task_ids) FROM crawl_jobs WHERE id = :id"), {"id": job_id}
        )
    assert sent == 3
    command.upgrade(config, "head")
