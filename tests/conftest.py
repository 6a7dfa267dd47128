"""Shared fixtures: a real PostgreSQL (DATABASE_URL, or an embedded throwaway one) migrated with Alembic,
and moto standing in for S3 and SQS."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from alembic import command
from alembic.config import Config
from moto import mock_aws
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from pixcrawler import aws as pixcrawler_aws
from pixcrawler import db, links
from pixcrawler.models import Base
from pixcrawler.settings import get_settings
from pixcrawler_local.functions import load_module

ROOT = Path(__file__).resolve().parent.parent
QUEUES = ("dispatch", "crawl", "validation", "export")


@pytest.fixture(autouse=True)
def metrics_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the local stack: handlers record no metrics and print no EMF, unless a test turns them on."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")


def load_function(name: str) -> ModuleType:
    """`functions/<name>/app.py` as Lambda loads it; each call is a fresh module, like a new environment."""
    return load_module(ROOT / "functions" / name / "app.py", name)


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logging"] = False
    return config


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """The database every test uses: `DATABASE_URL` when set, else a PostgreSQL started here for this run."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    import pgserver

    data_dir = tempfile.mkdtemp(prefix="pixcrawler-pg-")
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        yield f"postgresql+pg8000://postgres@/postgres?unix_sock={data_dir}/.s.PGSQL.5432"
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated(database_url: str) -> Iterator[str]:
    os.environ["DATABASE_URL"] = database_url
    get_settings.cache_clear()
    db.reset()
    command.upgrade(alembic_config(), "head")
    yield database_url


@pytest.fixture
def engine(migrated: str) -> Iterator[Engine]:
    """The layer's own engine, emptied after each test so tests never see each other's rows."""
    yield db.get_engine()
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with db.get_engine().begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto in-process: the data bucket and the four work queues (each with a dead-letter queue)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        pixcrawler_aws.reset()
        s3 = boto3.client("s3")
        sqs = boto3.client("sqs")
        bucket = "pixcrawler-test-data"
        s3.create_bucket(Bucket=bucket)
        monkeypatch.setenv("DATA_BUCKET", bucket)
        redrive_after = "3"
        monkeypatch.setenv("MAX_RECEIVE_COUNT", redrive_after)  # the workers must know the queues' limit
        urls = {}
        for name in QUEUES:
            dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            urls[name] = sqs.create_queue(
                QueueName=name,
                Attributes={
                    "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{redrive_after}"}}'
                },
            )["QueueUrl"]
            monkeypatch.setenv(f"{name.upper()}_QUEUE_URL", urls[name])
        get_settings.cache_clear()
        yield {"s3": s3, "sqs": sqs, "bucket": bucket, "queues": urls}
    pixcrawler_aws.reset()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto over real HTTP, for the S3 client botocore does not carry (the crawl's CRT uploads). It serves the
    same in-memory backends `mock_aws` resets, so both see the one bucket of the `aws` fixture."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_over_http(aws: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The `aws` fixture with S3 reached over HTTP, as the CRT uploads must be."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    pixcrawler_aws.reset()
    return aws


@pytest.fixture
def link_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Download links signed with a known secret, pointing at a known API base URL."""
    monkeypatch.setenv("DOWNLOAD_LINK_SECRET", "s3cret")
    monkeypatch.setenv("PUBLIC_API_URL", "https://api.example.com/")
    get_settings.cache_clear()
    links._secret.cache_clear()
    yield
    get_settings.cache_clear()
    links._secret.cache_clear()
