"""The S3 on disk against moto's S3, call for call: the same boto3 (and CRT, and raw HTTP) requests get the same
bodies, status codes, error codes, ETags, headers and listing pages from both. moto is the reference except
where it departs from Amazon S3; there the test follows S3 and cites the AWS documentation."""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import time
import tracemalloc
import zlib
from base64 import b64encode
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from pixcrawler import aws as pixcrawler_aws
from pixcrawler.transfers import Uploader
from pixcrawler_local.emulator import aws_server
from pixcrawler_local.s3disk import KeyIndex, Listed

SERVERS = ("moto", "s3disk")
PART = 5 << 20  # S3's minimum size of a part that is not the last
KEYS = ("a b/c d.jpg", "plus+sign", "100%/done", "%2F", "ü/日本語 é.png", "dir//double", "trailing/", "x?y#z&w=v")
Call = Callable[[Any, str], Any]
PAST, FUTURE = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
_buckets = itertools.count()


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """moto's server and the emulator (the S3 on disk over a fresh data dir), both over real HTTP."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    try:
        with aws_server("127.0.0.1", 0, tmp_path_factory.mktemp("s3disk"), "us-east-1") as emulator:
            yield {"moto": f"http://{host}:{port}", "s3disk": emulator.url}
    finally:
        moto.stop()


class Pair:
    """One bucket of the same name on each server, and the means to send both the same request."""

    def __init__(self, endpoints: dict[str, str]) -> None:
        self.urls = endpoints
        self.bucket = f"differential-{next(_buckets)}"
        self.clients = {name: client(url) for name, url in endpoints.items()}
        for s3 in self.clients.values():
            s3.create_bucket(Bucket=self.bucket)

    def outcomes(self, call: Call) -> dict[str, Any]:
        return {name: outcome(call, s3, self.bucket) for name, s3 in self.clients.items()}

    def same(self, call: Call) -> Any:
        """What `call` observed, once it is checked to be the same on both servers."""
        seen = self.outcomes(call)
        assert seen["s3disk"] == seen["moto"]
        return seen["moto"]

    def put(self, key: str, body: bytes, **extra: Any) -> Any:
        return self.same(lambda s3, bucket: s3.put_object(Bucket=bucket, Key=key, Body=body, **extra))


def request(operation: str, **params: Any) -> Call:
    """The boto3 call `operation` with `params`, on whichever client and bucket it is given."""
    return lambda s3, bucket: getattr(s3, operation)(Bucket=bucket, **params)


def client(url: str, **config: Any) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(signature_version="s3v4", retries={"total_max_attempts": 1}, **config),
    )  # fmt: skip


def outcome(call: Call, s3: Any, bucket: str) -> Any:
    """A response as a client observes it: status, parsed fields and body bytes, or the error's status and
    code; request ids, dates and the ids a server chooses itself are left out."""
    try:
        return observed(call(s3, bucket))
    except ClientError as error:
        return refused(error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"])


def refused(status: int, code: str) -> dict[str, Any]:
    return {"status": status, "error": code}


SERVER_CHOSEN = ("ResponseMetadata", "LastModified", "UploadId", "VersionId")
OPAQUE = ("Location", "ContinuationToken", "NextContinuationToken")


def observed(value: Any) -> Any:
    """Of a server's own choices only their presence counts: a URL with its own host, continuation tokens. moto
    also answers `VersionId: null` to a CompleteMultipartUpload in a bucket without versioning, left out."""
    if isinstance(value, dict):
        seen = {name: observed(item) for name, item in value.items() if name not in SERVER_CHOSEN}
        seen.update({name: bool(seen[name]) for name in OPAQUE if name in seen})
        if "ResponseMetadata" in value:
            seen["status"] = value["ResponseMetadata"]["HTTPStatusCode"]
        return seen
    if isinstance(value, list):
        return [observed(item) for item in value]
    if hasattr(value, "read"):
        return value.read()
    return value


@pytest.fixture
def pair(endpoints: dict[str, str]) -> Pair:
    return Pair(endpoints)


def test_put_then_get_and_head_return_the_same_bytes_etag_and_headers(pair: Pair) -> None:
    body = os.urandom(3000)
    metadata = {"source": "https://example.com/x", "n": "1", "my_key": "2", "Mixed-Case": "3"}
    put = pair.put(
        "images/cat.jpg", body, ContentType="image/jpeg", Metadata=metadata,
        ContentDisposition='attachment; filename="cat.jpg"', CacheControl="max-age=60", ContentLanguage="fr",
        ContentEncoding="identity", Expires=FUTURE,
    )  # fmt: skip
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"' and put["status"] == 200
    got = pair.same(lambda s3, bucket: s3.get_object(Bucket=bucket, Key="images/cat.jpg"))
    assert got["Body"] == body and got["ContentType"] == "image/jpeg"
    assert got["Metadata"] == {"source": "https://example.com/x", "n": "1", "my_key": "2", "mixed-case": "3"}
    assert got["ContentDisposition"] == 'attachment; filename="cat.jpg"' and got["CacheControl"] == "max-age=60"
    assert (got["ContentLanguage"], got["ContentEncoding"], got["Expires"]) == ("fr", "identity", FUTURE)
    head = pair.same(lambda s3, bucket: s3.head_object(Bucket=bucket, Key="images/cat.jpg"))
    assert head["ContentLength"] == 3000 and head["ETag"] == put["ETag"]
    pair.put("untyped", b"x")
    untyped = pair.same(lambda s3, bucket: s3.head_object(Bucket=bucket, Key="untyped"))
    assert untyped["ContentType"] == "binary/octet-stream"


def test_a_put_with_boto3s_trailing_crc32_and_one_without_store_the_same(pair: Pair, endpoints: dict[str, str]) -> None:
    """boto3 sends `aws-chunked` bodies with a trailing CRC32 by default; with `when_required` a plain body."""
    plain = {name: client(url, request_checksum_calculation="when_required") for name, url in endpoints.items()}
    body = os.urandom(70_000)
    for s3 in plain.values():
        s3.put_object(Bucket=pair.bucket, Key="plain", Body=body)
    pair.put("trailer", body, ChecksumAlgorithm="CRC32")
    for key in ("plain", "trailer"):
        got = pair.same(request("get_object", Key=key))
        assert got["Body"] == body
    assert "ChecksumCRC32" not in pair.same(lambda s3, bucket: s3.head_object(Bucket=bucket, Key="plain"))


def test_an_object_the_crt_uploader_put_reads_back_the_same(
    pair: Pair, endpoints: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = os.urandom(20_000)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for url in endpoints.values():
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
        pixcrawler_aws.reset()
        uploader = Uploader(pair.bucket, in_flight=2)
        uploader.put("crawled/ü 1+1.png", body, "image/png")
        uploader.wait()
    pixcrawler_aws.reset()
    got = same_but_the_kept_checksum(pair, "crawled/ü 1+1.png", body)
    assert got["Body"] == body and got["ContentType"] == "image/png"


def crc32(body: bytes) -> str:
    return b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()


def same_but_the_kept_checksum(pair: Pair, key: str, body: bytes) -> Any:
    """GetObject alike on both, but for the checksum of a body that came with a trailing CRC32 and no
    `x-amz-sdk-checksum-algorithm` header (the CRT's uploads, a raw request): moto keeps a checksum only when that
    header announces it. S3 keeps it: "S3 stores both the checksum value as object metadata and the object
    itself." (Amazon S3 User Guide, "Checking object integrity for data uploads in Amazon S3"), and boto3 checks
    a whole-object GET against it."""
    seen = pair.outcomes(lambda s3, bucket: s3.get_object(Bucket=bucket, Key=key))
    assert seen["s3disk"].pop("ChecksumCRC32") == crc32(body)
    assert seen["s3disk"] == seen["moto"]
    return seen["moto"]


RANGES = {
    "bytes=0-9": 206, "bytes=100-199": 206, "bytes=-25": 206, "bytes=990-5000": 206,
    "bytes=1000-": 416, "bytes=2000-2010": 416,
    "bytes=5-2": 200, "bytes=abc": 200, "bytes=0-1,3-4": 200,  # no single range: ignored, the whole object
}  # fmt: skip


@pytest.mark.parametrize(("header", "status"), RANGES.items())
def test_ranges_are_served_alike(pair: Pair, header: str, status: int) -> None:
    body = bytes(range(250)) * 4
    pair.put("ranged", body)
    got = pair.same(lambda s3, bucket: s3.get_object(Bucket=bucket, Key="ranged", Range=header))
    assert got["status"] == status
    if status == 206:
        first, last = (int(n) for n in got["ContentRange"].removeprefix("bytes ").partition("/")[0].split("-"))
        assert got["Body"] == body[first : last + 1] and got["ContentRange"].endswith("/1000")
    elif status == 200:
        assert got["Body"] == body
    else:
        assert got["error"] == "InvalidRange"


def test_conditional_gets_are_answered_alike(pair: Pair) -> None:
    """As boto3's downloads send If-Match (the ETag they began with) with every later range they fetch."""
    etag = pair.put("conditional", b"v1")["ETag"]
    conditions: list[tuple[int, dict[str, Any]]] = [
        (200, {"IfMatch": etag}), (412, {"IfMatch": '"0123"'}), (304, {"IfNoneMatch": etag}),
        (200, {"IfNoneMatch": '"0123"'}), (200, {"IfModifiedSince": PAST}), (304, {"IfModifiedSince": FUTURE}),
        (412, {"IfUnmodifiedSince": PAST}), (200, {"IfUnmodifiedSince": FUTURE}),
        (304, {"IfNoneMatch": etag, "IfModifiedSince": PAST}), (412, {"IfMatch": '"0123"', "Range": "bytes=0-0"}),
    ]  # fmt: skip
    for expected, condition in conditions:
        for read in ("get_object", "head_object"):
            seen = pair.same(request(read, Key="conditional", **condition))
            assert (seen["status"], seen.get("Body", b"v1")) == (expected, b"v1"), (read, condition)
    both = pair.outcomes(
        lambda s3, bucket: s3.get_object(Bucket=bucket, Key="conditional", IfMatch=etag, IfUnmodifiedSince=PAST)
    )
    # moto refuses this one 412. S3: "If both of the If-Match and If-Unmodified-Since headers are present in the
    # request as follows: If-Match condition evaluates to true, and; If-Unmodified-Since condition evaluates to
    # false; then, S3 returns 200 OK and the data requested." (Amazon S3 API Reference, GetObject)
    assert both["s3disk"]["Body"] == b"v1"


def test_missing_keys_and_buckets_are_the_same_errors(pair: Pair) -> None:
    assert pair.same(lambda s3, bucket: s3.head_object(Bucket=bucket, Key="none")) == refused(404, "404")
    assert pair.same(lambda s3, bucket: s3.get_object(Bucket=bucket, Key="none")) == refused(404, "NoSuchKey")
    for call in (
        lambda s3, bucket: s3.get_object(Bucket="no-such-bucket", Key="k"),
        lambda s3, bucket: s3.put_object(Bucket="no-such-bucket", Key="k", Body=b"x"),
        lambda s3, bucket: s3.list_objects_v2(Bucket="no-such-bucket"),
        lambda s3, bucket: s3.delete_object(Bucket="no-such-bucket", Key="k"),
        lambda s3, bucket: s3.create_multipart_upload(Bucket="no-such-bucket", Key="k"),
    ):
        assert pair.same(call) == refused(404, "NoSuchBucket")
    assert pair.same(lambda s3, bucket: s3.head_bucket(Bucket="no-such-bucket")) == refused(404, "404")
    assert pair.same(request("head_bucket")) == {"BucketRegion": "us-east-1", "status": 200}


def presigned(pair: Pair, name: str, key: str, **params: Any) -> str:
    expires = params.pop("ExpiresIn", 60)
    return str(
        pair.clients[name].generate_presigned_url(
            "get_object", Params={"Bucket": pair.bucket, "Key": key, **params}, ExpiresIn=expires
        )
    )


def test_a_presigned_get_serves_the_object_with_the_asked_disposition(pair: Pair) -> None:
    pair.put("exports/a b+c.zip", b"PK archive", ContentType="application/zip")
    seen = {}
    for name in SERVERS:
        url = presigned(pair, name, "exports/a b+c.zip", ResponseContentDisposition='attachment; filename="x.zip"')
        response = requests.get(url, timeout=10)
        seen[name] = (
            response.status_code, response.content, response.headers["Content-Type"],
            response.headers["Content-Disposition"],
        )  # fmt: skip
    assert seen["s3disk"] == seen["moto"] == (200, b"PK archive", "application/zip", 'attachment; filename="x.zip"')
    overridden = pair.same(
        lambda s3, bucket: s3.get_object(
            Bucket=bucket, Key="exports/a b+c.zip", ResponseContentType="application/octet-stream",
            ResponseCacheControl="no-store", ResponseContentLanguage="fr", ResponseContentEncoding="identity",
        )
    )  # fmt: skip
    assert overridden["ContentType"] == "application/octet-stream" and overridden["CacheControl"] == "no-store"


def test_an_expired_presigned_get_is_refused(pair: Pair) -> None:
    """moto serves expired links (it checks no expiry); S3 does not: "You can use the presigned URL multiple
    times, up to the expiration date and time." (Amazon S3 User Guide, "Download and upload objects with
    presigned URLs"), and answers 403 AccessDenied "Request has expired" after it."""
    pair.put("exports/old.zip", b"PK")
    url = presigned(pair, "s3disk", "exports/old.zip", ExpiresIn=1)
    signed = datetime.strptime(parse_qs(urlsplit(url).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    time.sleep(max(0.0, signed.timestamp() + 2.1 - time.time()))
    response = requests.get(url, timeout=10)
    assert response.status_code == 403 and b"<Code>AccessDenied</Code>" in response.content
    assert requests.get(presigned(pair, "s3disk", "exports/old.zip"), timeout=10).content == b"PK"


def test_delete_object_and_delete_objects_quiet_or_not(pair: Pair) -> None:
    for key in ("a", "b", "c", "d"):
        pair.put(key, key.encode())
    assert pair.same(lambda s3, bucket: s3.delete_object(Bucket=bucket, Key="a"))["status"] == 204
    assert pair.same(lambda s3, bucket: s3.delete_object(Bucket=bucket, Key="never-there"))["status"] == 204
    loud = pair.same(
        lambda s3, bucket: s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}, {"Key": "nope"}]})
    )
    assert sorted(item["Key"] for item in loud["Deleted"]) == ["b", "nope"]
    quiet = pair.outcomes(
        lambda s3, bucket: s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    )
    # moto lists the deleted keys in quiet mode too. S3: "In quiet mode, the response includes only keys for
    # which the delete operation encountered an error." (Amazon S3 User Guide, "Deleting multiple objects")
    assert quiet["s3disk"] == {"status": 200} and quiet["moto"]["status"] == 200
    listed = pair.same(lambda s3, bucket: s3.list_objects_v2(Bucket=bucket))
    assert [item["Key"] for item in listed["Contents"]] == ["d"]
    # moto fails with 500 on a request body that is no XML. S3: "MalformedXML: The XML you provided was not
    # well-formed or did not validate against our published schema." (Amazon S3 API Reference, "Error responses")
    cut = requests.post(f"{pair.urls['s3disk']}/{pair.bucket}?delete", data=b"<Delete><Object><Key>d", timeout=10)
    assert cut.status_code == 400 and b"<Code>MalformedXML</Code>" in cut.content
    assert pair.same(request("head_object", Key="d"))["status"] == 200


def test_listings_page_alike_by_prefix_max_keys_and_paginator(pair: Pair) -> None:
    for key in [*KEYS, *(f"p/{n:02d}" for n in range(7)), "q/1"]:
        pair.put(key, key.encode())
    everything = pair.same(lambda s3, bucket: s3.list_objects_v2(Bucket=bucket))
    assert sorted(item["Key"] for item in everything["Contents"]) == [item["Key"] for item in everything["Contents"]]
    assert set(KEYS) <= {item["Key"] for item in everything["Contents"]}
    for key in KEYS:
        assert pair.same(request("get_object", Key=key))["Body"] == key.encode()
    for prefix in ("p/", "ü/", "a b/", "100%", "nothing", "", "%2"):
        pair.same(request("list_objects_v2", Prefix=prefix))

    def pages(s3: Any, bucket: str) -> list[Any]:
        seen, token = [], None
        while True:
            more: dict[str, str] = {"ContinuationToken": token} if token else {}
            page = s3.list_objects_v2(Bucket=bucket, Prefix="p/", MaxKeys=3, **more)
            seen.append(observed(page))
            if not page["IsTruncated"]:
                return seen
            token = page["NextContinuationToken"]

    walked = pair.outcomes(pages)
    # moto leaves out the token it was sent. S3: "If ContinuationToken was sent with the request, it is included
    # in the response." (Amazon S3 API Reference, ListObjectsV2)
    assert [page.pop("ContinuationToken", False) for page in walked["s3disk"]] == [False, True, True]
    assert walked["s3disk"] == walked["moto"]
    assert [page["KeyCount"] for page in walked["moto"]] == [3, 3, 1]
    paginated = pair.same(
        lambda s3, bucket: [
            [item["Key"] for item in page["Contents"]]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
        ]
    )
    assert list(itertools.chain(*paginated)) == [item["Key"] for item in everything["Contents"]]
    after = pair.same(lambda s3, bucket: s3.list_objects_v2(Bucket=bucket, StartAfter="p/03", MaxKeys=2))
    assert [item["Key"] for item in after["Contents"]] == ["p/04", "p/05"] and after["StartAfter"] == "p/03"
    assert pair.same(lambda s3, bucket: s3.list_objects_v2(Bucket=bucket, MaxKeys=0))["KeyCount"] == 0
    delimited = pair.outcomes(lambda s3, bucket: s3.list_objects_v2(Bucket=bucket, Delimiter="/"))
    assert delimited["s3disk"] == refused(501, "NotImplemented")  # refused, not ignored


def upload(s3: Any, bucket: str, key: str, parts: dict[int, bytes]) -> tuple[str, dict[int, str]]:
    """A new multipart upload with `parts` uploaded in the dict's order: its id and the part ETags by number."""
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType="application/x-tar", CacheControl="no-cache", Metadata={"n": "1"}
    )["UploadId"]
    return upload_id, {number: part(s3, bucket, key, upload_id, number, data) for number, data in parts.items()}


def part(s3: Any, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> str:
    return str(s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)["ETag"])


def complete(s3: Any, bucket: str, key: str, upload_id: str, etags: dict[int, str]) -> Any:
    parts = [{"PartNumber": number, "ETag": etag} for number, etag in sorted(etags.items())]
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})


def test_a_multipart_upload_out_of_order_with_a_part_uploaded_again(pair: Pair) -> None:
    first, again, last = os.urandom(PART), os.urandom(PART), os.urandom(1000)

    def run(s3: Any, bucket: str) -> Any:
        upload_id, etags = upload(s3, bucket, "exports/big.tar", {2: last, 1: first})
        etags[1] = part(s3, bucket, "exports/big.tar", upload_id, 1, again)
        done = complete(s3, bucket, "exports/big.tar", upload_id, etags)
        return [etags, done, s3.get_object(Bucket=bucket, Key="exports/big.tar")]

    etags, done, got = pair.same(run)
    assert etags[1] == f'"{hashlib.md5(again).hexdigest()}"'
    assert done["ETag"].endswith('-2"') and got["ETag"] == done["ETag"] and done["Key"] == "exports/big.tar"
    assert got["Body"] == again + last and got["ContentType"] == "application/x-tar"
    assert (got["CacheControl"], got["Metadata"]) == ("no-cache", {"n": "1"})


def test_unfinished_uploads_are_listed_by_prefix_alike_until_aborted(pair: Pair) -> None:
    """What an export's clean-up asks: the uploads left under its prefix (a killed invocation's), to abort."""
    keys = ["exports/1/a/train-000000.tar", f"exports/1/a/{KEYS[0]}", f"exports/1/b/{KEYS[4]}", "exports/2/x.zip"]
    started = {
        name: {key: s3.create_multipart_upload(Bucket=pair.bucket, Key=key)["UploadId"] for key in keys}
        for name, s3 in pair.clients.items()
    }

    def listed(prefix: str) -> dict[str, list[tuple[str, str]]]:
        seen = {}
        for name, s3 in pair.clients.items():
            pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=pair.bucket, Prefix=prefix)
            seen[name] = [(upload["Key"], upload["UploadId"]) for page in pages for upload in page.get("Uploads", [])]
        return seen

    # S3 lists uploads sorted by key (ListMultipartUploads, "Sorting of multipart uploads in response"); moto
    # lists them in the order they were started, so only its set is compared
    for prefix, expected in (("exports/1/", keys[:3]), ("exports/1/a/", keys[:2]), ("", keys)):
        seen = listed(prefix)
        for name in pair.clients:
            wanted = [(key, started[name][key]) for key in sorted(expected)]
            assert (seen[name] if name == "s3disk" else sorted(seen[name])) == wanted, (name, prefix)
    for name, s3 in pair.clients.items():
        s3.abort_multipart_upload(Bucket=pair.bucket, Key=keys[0], UploadId=started[name][keys[0]])
    assert {name: sorted(key for key, _ in uploads) for name, uploads in listed("exports/1/").items()} == {
        name: sorted(keys[1:3]) for name in pair.clients
    }


def test_multipart_refusals_are_the_same(pair: Pair) -> None:
    def too_small(s3: Any, bucket: str) -> Any:
        return complete(s3, bucket, "small", *upload(s3, bucket, "small", {1: b"a" * 1000, 2: b"b"}))

    def wrong_etag(s3: Any, bucket: str) -> Any:
        upload_id, _ = upload(s3, bucket, "wrong", {1: b"a"})
        return complete(s3, bucket, "wrong", upload_id, {1: '"00000000000000000000000000000000"'})

    def no_parts(s3: Any, bucket: str) -> Any:
        upload_id, _ = upload(s3, bucket, "none", {})
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="none", UploadId=upload_id, MultipartUpload={"Parts": []}
        )

    def aborted(s3: Any, bucket: str) -> Any:
        upload_id, etags = upload(s3, bucket, "aborted", {1: b"a"})
        gone = s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)["ResponseMetadata"]
        return [
            gone["HTTPStatusCode"],
            outcome(lambda s3, bucket: complete(s3, bucket, "aborted", upload_id, etags), s3, bucket),
            outcome(lambda s3, bucket: part(s3, bucket, "aborted", upload_id, 2, b"b"), s3, bucket),
            outcome(lambda s3, bucket: s3.head_object(Bucket=bucket, Key="aborted"), s3, bucket),
        ]

    assert pair.same(too_small) == refused(400, "EntityTooSmall")
    assert pair.same(wrong_etag) == refused(400, "InvalidPart")
    assert pair.same(no_parts) == refused(400, "MalformedXML")
    seen = pair.outcomes(aborted)
    # moto answers 500 to completing an aborted upload and to a part for it. S3: "NoSuchUpload: The specified
    # multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been
    # aborted or completed." (Amazon S3 API Reference, "Error responses": 404 Not Found)
    no_such_upload = refused(404, "NoSuchUpload")
    assert seen["s3disk"] == [204, no_such_upload, no_such_upload, refused(404, "404")]
    assert [seen["moto"][0], seen["moto"][3]] == [204, refused(404, "404")]
    assert "Contents" not in pair.same(lambda s3, bucket: s3.list_objects_v2(Bucket=bucket))


def raw_put(url: str, bucket: str, key: str, body: bytes, trailer: str, cut: int = 0) -> tuple[int, bytes]:
    """A PutObject framed as `aws-chunked` with a trailing `x-amz-checksum-crc32`, as boto3 sends it, but
    whose trailer is `trailer`, and without the framing's last `cut` bytes."""
    framed = f"{len(body):x}\r\n".encode() + body + f"\r\n0\r\nx-amz-checksum-crc32:{trailer}\r\n\r\n".encode()
    framed = framed[: len(framed) - cut]
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname or "", split.port, timeout=10)
    try:
        connection.request(
            "PUT", f"/{bucket}/{key}", framed,
            {
                "Content-Encoding": "aws-chunked", "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                "X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": str(len(body)),
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261203/us-east-1/s3/aws4_request, "
                "SignedHeaders=host, Signature=0",
            },
        )  # fmt: skip
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_wrong_trailing_checksum_is_refused_and_nothing_stored(pair: Pair) -> None:
    """moto stores the body whatever its trailer says; S3 refuses it, as the AWS error code list has it:
    "BadDigest: The Content-MD5 or checksum value that you specified did not match what the server received."
    (Amazon S3 API Reference, "Error responses", 400 Bad Request)."""
    body = b"jpeg bytes" * 100
    wrong = b64encode((zlib.crc32(body) ^ 1).to_bytes(4, "big")).decode()
    pair.put("bad", b"stored before")
    status, error = raw_put(pair.urls["s3disk"], pair.bucket, "bad", body, wrong)
    assert status == 400 and b"<Code>BadDigest</Code>" in error
    assert pair.outcomes(lambda s3, bucket: s3.get_object(Bucket=bucket, Key="bad"))["s3disk"]["Body"] == (
        b"stored before"
    )
    assert [raw_put(pair.urls[name], pair.bucket, "good", body, crc32(body))[0] for name in SERVERS] == [200, 200]
    assert same_but_the_kept_checksum(pair, "good", body)["Body"] == body

    headed = pair.outcomes(
        lambda s3, bucket: s3.put_object(Bucket=bucket, Key="bad", Body=body, ChecksumCRC32=wrong)
    )  # the checksum as a header, the body plain
    assert headed["s3disk"] == refused(400, "BadDigest")
    assert pair.outcomes(lambda s3, bucket: s3.get_object(Bucket=bucket, Key="bad"))["s3disk"]["Body"] == (
        b"stored before"
    )


def test_a_body_cut_inside_its_framing_is_refused_and_nothing_stored(pair: Pair) -> None:
    """A body that ends inside an `aws-chunked` frame line (the last blank line, the trailer, the closing zero
    chunk) is an incomplete request, whatever the Content-Length it came with."""
    body = b"jpeg bytes" * 100
    pair.put("cut", b"stored before")
    trailer = f"x-amz-checksum-crc32:{crc32(body)}\r\n\r\n"
    for cut in (1, 3, len(trailer) + 2):
        status, error = raw_put(pair.urls["s3disk"], pair.bucket, "cut", body, crc32(body), cut=cut)
        assert status == 400 and b"<Code>IncompleteBody</Code>" in error, cut
    assert pair.outcomes(request("get_object", Key="cut"))["s3disk"]["Body"] == b"stored before"
    assert raw_put(pair.urls["s3disk"], pair.bucket, "cut", body, crc32(body))[0] == 200


def test_what_it_does_not_serve_is_refused_never_misread(pair: Pair) -> None:
    """Where moto serves more of S3 than the product uses, the S3 on disk answers 501 NotImplemented rather than
    serve the request as a plainer one: a `?tagging` PUT must not replace the object with the tagging document."""
    pair.put("kept", b"original bytes")
    unserved: list[Call] = [
        request("put_object_tagging", Key="kept", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        request("get_object_tagging", Key="kept"),
        request("get_object", Key="kept", PartNumber=1),
        request("copy_object", Key="copy", CopySource={"Bucket": pair.bucket, "Key": "kept"}),
        request("list_objects"),
        request("put_bucket_versioning", VersioningConfiguration={"Status": "Enabled"}),
    ]
    for call in unserved:
        seen = pair.outcomes(call)
        assert seen["moto"]["status"] in (200, 206) and seen["s3disk"] == refused(501, "NotImplemented")
    assert pair.outcomes(request("get_object", Key="kept"))["s3disk"]["Body"] == b"original bytes"


def test_a_large_body_streams_through_holding_under_a_mebibyte(endpoints: dict[str, str]) -> None:
    """An 8 MiB export part in and out of the S3 on disk, sent and read 64 KiB at a time, costs this process (the
    server's threads included, which share it here) less than 1 MiB at its highest: with 1 MiB blocks through
    cheroot's pure-Python socket reader the PUT alone held about 4 MiB."""
    bucket, size, chunk = "streamed", 8 << 20, b"\x5a" * (64 << 10)
    address = urlsplit(endpoints["s3disk"]).netloc
    connection = http.client.HTTPConnection(address)
    connection.request("PUT", f"/{bucket}")
    assert connection.getresponse().read() == b""
    tracemalloc.start()
    try:
        connection.request("PUT", f"/{bucket}/part", body=itertools.repeat(chunk, size // len(chunk)),
                           headers={"Content-Length": str(size)})  # fmt: skip
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"")
        connection.request("GET", f"/{bucket}/part")
        response = connection.getresponse()
        received = sum(len(block) for block in iter(lambda: response.read(len(chunk)), b""))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        connection.close()
    assert received == size
    assert peak < 1 << 20, f"{peak / (1 << 20):.1f} MiB held at once"


KEY_TEXT = st.text("ab/-ü日\uff5e\U0001f600", max_size=5)
"""Few characters, so keys share prefixes: ASCII, two- and three-byte UTF-8, one above U+FFFF (where UTF-16's
order, which S3 does not use, would differ from UTF-8's)."""


def listed(key: str) -> Listed:
    return Listed(key, len(key), f"etag-{key}", "2026-12-07T01:02:03+00:00", "crc32" if len(key) % 2 else "")


@settings(max_examples=300, deadline=None)
@given(st.sets(KEY_TEXT), st.text("ab/ü日", max_size=3), KEY_TEXT, st.integers(0, 8))
def test_the_key_index_pages_as_sorting_every_key_would(keys: set[str], prefix: str, after: str, limit: int) -> None:
    """What the set of keys did before (sort all, keep those with the prefix past `after`), and other buckets'
    keys never show."""
    index = KeyIndex()
    index.add("other", [listed(key) for key in (f"{prefix}x", "a", "b")])
    index.add("bucket", [listed(key) for key in keys])
    expected = sorted(key for key in keys if key.startswith(prefix) and key > after)
    assert index.page("bucket", prefix, after, limit) == [listed(key) for key in expected[:limit]]
    assert index.count() == len(keys) + len({f"{prefix}x", "a", "b"})
    for key in expected:
        assert ("bucket", key) in index and index.remove("bucket", key) and ("bucket", key) not in index
    assert index.page("bucket", prefix, after, limit) == [] and not index.remove("bucket", prefix + "\0")
