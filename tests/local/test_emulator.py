"""Stored objects outlive the S3 emulator: the bucket's disk copy is refreshed, then restored into a new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from pixcrawler_local.emulator import BucketMirror


def test_objects_survive_a_restart_with_their_content_type_and_metadata(aws: dict[str, Any], tmp_path: Path) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    s3.put_object(Bucket=bucket, Key="projects/1/a b/é.jpg", Body=b"jpeg-bytes", ContentType="image/jpeg")
    s3.put_object(Bucket=bucket, Key="exports/x.zip", Body=b"zip", Metadata={"export": "7"})
    s3.put_object(Bucket=bucket, Key="gone.txt", Body=b"soon deleted")
    mirror = BucketMirror(s3, bucket, tmp_path)
    assert mirror.sync() == 3
    assert mirror.sync() == 0  # nothing changed: nothing fetched again
    s3.delete_object(Bucket=bucket, Key="gone.txt")
    s3.put_object(Bucket=bucket, Key="exports/x.zip", Body=b"zip, rebuilt", Metadata={"export": "7"})
    assert mirror.sync() == 1

    with mock_aws():  # a fresh, empty emulator, as after a restart
        fresh = boto3.client("s3", region_name="us-east-1")
        fresh.create_bucket(Bucket=bucket)
        assert BucketMirror(fresh, bucket, tmp_path).restore() == 2
        image = fresh.get_object(Bucket=bucket, Key="projects/1/a b/é.jpg")
        assert image["Body"].read() == b"jpeg-bytes" and image["ContentType"] == "image/jpeg"
        export = fresh.get_object(Bucket=bucket, Key="exports/x.zip")
        assert export["Body"].read() == b"zip, rebuilt" and export["Metadata"] == {"export": "7"}
        assert "Contents" not in fresh.list_objects_v2(Bucket=bucket, Prefix="gone")
