"""Export fixtures: the handler loaded from functions/, export job rows, delivery of (continued) messages."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler.messages import ExportMessage
from pixcrawler.models import CrawlJob, ExportJob
from pixcrawler.schemas.export import ExportOptions
from tests.conftest import load_function
from tests.events import lambda_context, sqs_event, sqs_record


@pytest.fixture(scope="session")
def export_app() -> ModuleType:
    return load_function("export")


@pytest.fixture
def env(engine: Any, aws_over_http: dict[str, Any], link_secret: None) -> dict[str, Any]:
    """Database, moto (S3 over HTTP: the export reads images through the CRT) and a link secret: everything an
    export needs."""
    return aws_over_http


def export_job(session: Session, job: CrawlJob, fmt: str = "zip", name: str = "My Cats", **options: Any) -> ExportJob:
    """An export job as the API creates it; committed so the worker's own connection sees it."""
    row = ExportJob(
        crawl_job_id=job.id,
        user_id=job.project.user_id,
        name=name,
        format=fmt,
        export_options=ExportOptions(**options).model_dump(mode="json"),
    )
    session.add(row)
    session.commit()
    return row


def deliver(app: ModuleType, export_job_id: int, context: Any = None) -> dict[str, Any]:
    event = sqs_event(sqs_record(ExportMessage(export_job_id=export_job_id)))
    result: dict[str, Any] = app.lambda_handler(event, context or lambda_context("export"))
    return result


def drain(app: ModuleType, queue_url: str, sqs: Any, context: Any = None, limit: int = 200) -> int:
    """Deliver queued continuation messages until the queue is empty; returns how many were delivered."""
    delivered = 0
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages"):
        body = ExportMessage.model_validate_json(messages[0]["Body"])
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        assert deliver(app, body.export_job_id, context) == {"batchItemFailures": []}
        delivered += 1
        assert delivered < limit
    return delivered


def reload(session: Session, export: ExportJob) -> ExportJob:
    """The row as the worker left it; the transaction ends at once so the worker's pooled connection is free."""
    session.refresh(export)
    session.commit()
    return export


def fetch(aws: dict[str, Any], key: str) -> bytes:
    data: bytes = aws["s3"].get_object(Bucket=aws["bucket"], Key=key)["Body"].read()
    return data


def manifest_rows(text: str) -> list[dict[str, Any]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]
