"""The CRT uploader and reader against moto over real HTTP: bytes, types and keys as boto3 would put and get them."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pixcrawler import aws as pixcrawler_aws
from pixcrawler.transfers import ObjectMissing, Reader, ReadFailed, Uploader, UploadFailed, upload_part
from pixcrawler_local.httphost import HttpHost, Response


def test_uploads_store_the_bytes_and_content_type_under_the_exact_key(aws_over_http: dict[str, Any]) -> None:
    bodies = {f"projects/1/crawl-jobs/2/red cats/ü-{n}.png": os.urandom(1000 + n) for n in range(7)}
    uploader = Uploader(aws_over_http["bucket"], in_flight=2)
    for key, body in bodies.items():
        uploader.put(key, body, "image/png")
    uploader.wait()

    s3 = aws_over_http["s3"]
    listing = s3.list_objects_v2(Bucket=aws_over_http["bucket"])
    assert sorted(item["Key"] for item in listing["Contents"]) == sorted(bodies)
    for key, body in bodies.items():
        stored = s3.get_object(Bucket=aws_over_http["bucket"], Key=key)
        assert stored["ContentType"] == "image/png"
        assert hashlib.sha256(stored["Body"].read()).digest() == hashlib.sha256(body).digest()


def test_a_failed_upload_names_its_key_and_the_reason(aws_over_http: dict[str, Any]) -> None:
    uploader = Uploader("no-such-bucket-here", in_flight=4)
    uploader.put("a/key.jpg", b"\xff\xd8\xff", "image/jpeg")

    with pytest.raises(
        UploadFailed,
        match=r"1 of 1 uploads failed; a/key.jpg: HTTP 404 NoSuchBucket: The specified bucket does not exist",
    ):
        uploader.wait()


def test_parts_join_into_the_object_and_a_refused_part_names_its_key_and_the_reason(
    aws_over_http: dict[str, Any],
) -> None:
    s3, bucket, key = aws_over_http["s3"], aws_over_http["bucket"], "exports/7/a b/ü.tar"
    first, last = os.urandom(5 << 20), os.urandom(1234)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [
        {"PartNumber": n, "ETag": upload_part(bucket, key, upload_id, n, body)} for n, body in ((1, first), (2, last))
    ]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})

    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == first + last
    with pytest.raises(UploadFailed, match=r"exports/7/a b/ü.tar, part 1: HTTP 404 NoSuchBucket"):
        upload_part("no-such-bucket-here", key, upload_id, 1, b"late")


def test_reads_return_each_object_whole_and_name_what_is_missing(aws_over_http: dict[str, Any]) -> None:
    """Bodies of several CRT parts (its part size is 8 MiB) come back whole and in order, from many threads."""
    s3, bucket = aws_over_http["s3"], aws_over_http["bucket"]
    bodies = {"small/ü cat.jpg": os.urandom(3_000), "large.tar": os.urandom(20 * 1024 * 1024 + 17)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    reader = Reader(bucket)
    with ThreadPoolExecutor(4) as pool:
        read = dict(zip(bodies, pool.map(reader.get, bodies), strict=True))
    assert {key: hashlib.sha256(data).hexdigest() for key, data in read.items()} == {
        key: hashlib.sha256(body).hexdigest() for key, body in bodies.items()
    }
    with pytest.raises(ObjectMissing, match=r"^gone\.jpg$"):
        reader.get("gone.jpg")
    with pytest.raises(ReadFailed, match=r"^a\.jpg: HTTP 404 NoSuchBucket"):
        Reader("no-such-bucket-here").get("a.jpg")


def test_each_endpoint_gets_its_own_connections_even_on_one_host(
    aws_over_http: dict[str, Any], host: HttpHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRT pools connections by host name alone: a second port on 127.0.0.1 must still be reached."""
    bucket = aws_over_http["bucket"]
    via_moto = Uploader(bucket, in_flight=1)
    via_moto.put("via-moto.jpg", b"1", "image/jpeg")
    via_moto.wait()

    host.routes[f"/{bucket}/via-host.jpg"] = Response()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", host.base_url)
    pixcrawler_aws.reset()
    via_host = Uploader(bucket, in_flight=1)
    via_host.put("via-host.jpg", b"2", "image/jpeg")
    via_host.wait()

    assert [(received.method, received.path) for received in host.received] == [("PUT", f"/{bucket}/via-host.jpg")]
    listing = aws_over_http["s3"].list_objects_v2(Bucket=bucket)
    assert [item["Key"] for item in listing["Contents"]] == ["via-moto.jpg"]
