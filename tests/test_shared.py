"""The small shared pieces every function relies on: links, queue sends, storage keys, the test host."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.utils import parse_timestamp

from pixcrawler import aws as pixcrawler_aws
from pixcrawler import bucket, links, object_keys, queues
from pixcrawler.messages import ChunkMessage
from pixcrawler_local.httphost import HttpHost, Response


def test_a_link_lives_exactly_its_lifetime(link_secret: None) -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, 500_000, tzinfo=UTC)
    link = links.issue(42, timedelta(hours=24), now=now)
    assert link.expires_at == datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert link.url.startswith("https://api.example.com/v1/downloads/")
    token = link.url.rsplit("/", 1)[1]
    assert links.verify(token, now=link.expires_at - timedelta(seconds=1)) == 42
    with pytest.raises(links.LinkExpired):
        links.verify(token, now=link.expires_at)


def test_a_tampered_link_is_refused(link_secret: None) -> None:
    token = links.sign(42, datetime.now(UTC) + timedelta(hours=1))
    payload, signature = token.split(".")
    forged = links._b64(json.dumps({"e": 43, "x": 9999999999}).encode())
    for bad in (f"{forged}.{signature}", f"{payload}.{signature[:-2]}xx", payload, "", "..."):
        with pytest.raises(links.LinkInvalid):
            links.verify(bad)


def test_presigned_download_names_the_file(link_secret: None, aws: dict[str, Any]) -> None:
    url = links.presigned_download("exports/1/x/data.zip", "data.zip")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["response-content-disposition"] == ['attachment; filename="data.zip"']


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-06T23:40:16.000Z",
        "2026-12-06T23:40:16+02:00",
        "Sun, 06 Dec 2026 23:40:16 GMT",
        1700000000,
        1700000000.5,
        "1700000000",
    ],
)
def test_timestamps_read_as_botocore_reads_them(value: str | float) -> None:
    assert pixcrawler_aws._timestamp(value) == parse_timestamp(value)


def test_a_listing_has_the_times_a_head_request_gives(aws: dict[str, Any]) -> None:
    """The listing's ISO 8601 times (parsed without dateutil) and the HEAD answer's RFC 822 header agree."""
    for key in ("a/1.jpg", "a/2.jpg"):
        aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=b"x")
    listed = pixcrawler_aws.s3().list_objects_v2(Bucket=aws["bucket"], Prefix="a/")["Contents"]
    assert [item["Key"] for item in listed] == ["a/1.jpg", "a/2.jpg"] == list(bucket.keys_under("a/"))
    for item in listed:
        head = pixcrawler_aws.s3().head_object(Bucket=aws["bucket"], Key=item["Key"])
        assert item["LastModified"].utcoffset() is not None
        assert item["LastModified"].replace(microsecond=0) == head["LastModified"]


def test_send_batch_queues_every_message_once(aws: dict[str, Any]) -> None:
    queue = aws["queues"]["crawl"]
    ids = queues.send_batch(queue, [ChunkMessage(crawl_job_id=1, chunk_id=n) for n in range(23)])
    assert len(set(ids)) == 23
    bodies = []
    while batch := aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(message["Body"])["chunk_id"] for message in batch]
    assert sorted(bodies) == list(range(23))


def test_send_to_a_missing_queue_raises_queue_send_error(aws: dict[str, Any]) -> None:
    with pytest.raises(queues.QueueSendError):
        queues.send(aws["queues"]["crawl"] + "-gone", ChunkMessage(crawl_job_id=1, chunk_id=1))


@pytest.mark.parametrize(("text", "expected"), [("Red Cats", "red-cats"), ("../..", "item"), ("ünï/cödé", "n-c-d")])
def test_slugs_are_safe_path_segments(text: str, expected: str) -> None:
    assert object_keys.slug(text) == expected


def test_http_host_serves_routes_and_404s() -> None:
    with HttpHost() as host:
        host.routes["/a.jpg"] = Response(b"jpeg", headers={"Content-Type": "image/jpeg"})
        assert requests.get(host.url("/a.jpg?x=1"), timeout=5).content == b"jpeg"
        assert requests.get(host.url("/missing"), timeout=5).status_code == 404
        assert host.requests == ["/a.jpg?x=1", "/missing"]
