"""Listing and deleting objects of the data bucket, for project deletion, crawl and export clean-up alike."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import suppress
from itertools import islice
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pixcrawler import aws
from pixcrawler.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

DELETE_LIMIT = 1000
"""Keys per DeleteObjects request, S3's maximum."""


def keys_under(prefix: str) -> Iterator[str]:
    for page in key_pages(prefix):
        yield from page


def key_pages(prefix: str, page_size: int = 1000) -> Iterator[list[str]]:
    """The keys under `prefix`, one listing page (`page_size` keys, S3 answers at most 1,000) at a time."""
    pages = (
        aws.s3()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=get_settings().data_bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
    )
    for page in pages:
        if keys := [item["Key"] for item in page.get("Contents", [])]:
            yield keys


def delete(keys: Iterable[str]) -> int:
    """Delete `keys` in batches as they come; returns how many. Raises when S3 refuses any of them (the
    request succeeds even then, naming the failed keys in `Errors`)."""
    bucket, client, removed = get_settings().data_bucket, aws.s3(), 0
    remaining = iter(keys)
    while batch := list(islice(remaining, DELETE_LIMIT)):
        objects: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in batch]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        if errors := response.get("Errors"):
            raise RuntimeError(f"S3 refused to delete {len(errors)} object(s), e.g. {errors[0]}")
        removed += len(batch)
    return removed


def abort_uploads(prefix: str) -> int:
    """Abort every unfinished multipart upload under `prefix` (S3 bills their stored parts until then, and a
    listing of objects never shows them); returns how many. One already gone is not an error."""
    client, bucket, aborted = aws.s3(), get_settings().data_bucket, 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            with suppress(ClientError):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
    return aborted
