"""Download links: our signed token for the advertised lifetime, then a short presigned S3 URL that serves
the exact archive over real HTTP (moto's server mode stands in for S3)."""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pixcrawler import aws, links
from pixcrawler.models import JobStatus
from pixcrawler.settings import get_settings
from tests import factories
from tests.export.archive import members
from tests.export.conftest import deliver, export_job, reload


@pytest.fixture
def s3_server(engine: Engine, link_secret: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto as a real HTTP endpoint on a free port; the layer's clients reach it through AWS_ENDPOINT_URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DATA_BUCKET": "served-data",
    }.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket="served-data")
    monkeypatch.setenv("EXPORT_QUEUE_URL", sqs.create_queue(QueueName="served-export")["QueueUrl"])
    get_settings.cache_clear()
    try:
        yield {"s3": s3, "bucket": "served-data"}
    finally:
        server.stop()
        aws.reset()
        get_settings.cache_clear()


def exported(session: Session, served: dict[str, Any], app: ModuleType, fmt: str, count: int, hours: int) -> Any:
    job = factories.crawl_job(session)
    images = [factories.stored_image(session, served["s3"], served["bucket"], job, seed=n) for n in range(count)]
    session.commit()
    export = export_job(session, job, fmt, link_lifetime_hours=hours)
    deliver(app, export.id)
    return reload(session, export), images


def test_the_link_lives_its_lifetime_and_redirects_to_the_exact_archive(
    session: Session, s3_server: dict[str, Any], export_app: ModuleType
) -> None:
    export, images = exported(session, s3_server, export_app, "zip", 3, hours=72)

    assert export.status is JobStatus.COMPLETED, export.error_message
    assert export.download_url is not None and export.expires_at is not None and export.completed_at is not None
    assert export.download_url.startswith("https://api.example.com/v1/downloads/")
    assert abs(export.expires_at - (export.completed_at + timedelta(hours=72))) < timedelta(seconds=1)
    token = export.download_url.rsplit("/", 1)[1]
    assert links.verify(token, now=export.expires_at - timedelta(seconds=1)) == export.id
    with pytest.raises(links.LinkExpired):
        links.verify(token, now=export.expires_at)
    with pytest.raises(links.LinkInvalid):
        links.verify(token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))

    # What the API's download route answers with: a fresh, five-minute URL naming the file.
    url = links.presigned_download(export.storage_key or "", posixpath.basename(export.storage_key or ""))
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Date" in query and "X-Amz-Signature" in query
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="my-cats.zip"'
    stored = s3_server["s3"].get_object(Bucket=s3_server["bucket"], Key=export.storage_key)["Body"].read()
    assert response.content == stored and len(stored) == export.file_size
    files = members(response.content, "zip")
    for image in images:
        original = s3_server["s3"].get_object(Bucket=s3_server["bucket"], Key=image.storage_url)["Body"].read()
        assert files[f"{image.id}_{image.filename}"] == original


def test_manifest_links_fetch_each_image_over_http(
    session: Session, s3_server: dict[str, Any], export_app: ModuleType
) -> None:
    export, images = exported(session, s3_server, export_app, "csv", 2, hours=1)

    key = export.storage_key
    text = s3_server["s3"].get_object(Bucket=s3_server["bucket"], Key=key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    for row, image in zip(rows, images, strict=True):
        assert parse_qs(urlsplit(row["url"]).query)["X-Amz-Expires"] == ["3600"]
        body = requests.get(row["url"], timeout=10).content
        assert body == s3_server["s3"].get_object(Bucket=s3_server["bucket"], Key=image.storage_url)["Body"].read()
