"""Moving many small objects fast: S3 PUTs and GETs through the AWS Common Runtime's S3 client.

A crawl chunk stores hundreds of images of tens of kilobytes, and an export reads thousands back. boto3's
`put_object` spends about 2.5 ms of interpreter time on each (serialising, signing and the HTTP exchange all
run in Python, under the GIL), which caps one worker near 300 stores/s however many threads it runs, below
the downloads it has to keep up with; `get_object` costs about 2 ms. awscrt's S3 client, the engine behind
`boto3[crt]`, signs, sends, checksums and retries on native threads: about 0.25 ms of Python per object.
boto3's own CRT transfer manager cannot be used: it ignores a configured endpoint (the local stack's
emulator) and always speaks TLS.

Where objects go stays boto3's decision: the endpoint, the addressing style and the credentials are read
from the same boto3 configuration every other S3 call uses, so `AWS_ENDPOINT_URL` reaches both.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from concurrent.futures import Future
from functools import cache
from typing import NamedTuple
from urllib.parse import quote, urlencode, urlsplit
from xml.etree import ElementTree

from awscrt import auth, http, s3
from awscrt import io as crt_io

from pixcrawler import aws, snapstart


class UploadFailed(Exception):
    """An object could not be stored; `str(error)` names the key and the reason."""


class ObjectMissing(Exception):
    """No object has this key; `str(error)` is the key."""


class ReadFailed(Exception):
    """An object could not be read; `str(error)` names the key and the reason."""


class _Target(NamedTuple):
    tls: bool
    host: str
    prefix: str
    """The path before the key: `/bucket` with path-style addressing, empty with virtual hosts."""

    def request(
        self, method: str, key: str, body: bytes | None = None, query: str = "", content_type: str | None = None
    ) -> http.HttpRequest:
        """`method` on `key`, with the Host header the CRT signs and, for a body, its length."""
        headers = [("Host", self.host)]
        if body is not None:
            headers.append(("Content-Length", str(len(body))))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        path = f"{self.prefix}/{quote(key)}{'?' + query if query else ''}"
        return http.HttpRequest(method, path, http.HttpHeaders(headers), None if body is None else io.BytesIO(body))


def _target(bucket: str) -> _Target:
    """Ask boto3 where it would PUT a key of this bucket (custom endpoint, virtual host or path style)."""
    url = urlsplit(aws.s3().generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}))
    return _Target(tls=url.scheme == "https", host=url.netloc, prefix=url.path.removesuffix("/k"))


@cache
def _client(tls: bool, host: str) -> s3.S3Client:
    """One native client per endpoint and container; warm invocations reuse its connections. (One client
    per endpoint because the CRT pools connections by host name, ignoring the port.) Credentials come from
    the standard chain boto3 also reads (the environment on Lambda), resolved and refreshed natively."""
    loops = crt_io.EventLoopGroup()
    bootstrap = crt_io.ClientBootstrap(loops, crt_io.DefaultHostResolver(loops))
    return s3.S3Client(
        bootstrap=bootstrap,
        region=aws.region(),
        tls_mode=s3.S3RequestTlsMode.ENABLED if tls else s3.S3RequestTlsMode.DISABLED,
        credential_provider=auth.AwsCredentialsProvider.new_default_chain(bootstrap),
    )


snapstart.after_restore(_client.cache_clear)
"""Its pooled connections and natively resolved credentials did not survive the snapshot."""

_CHECKSUM = s3.S3ChecksumConfig(algorithm=s3.S3ChecksumAlgorithm.CRC32, location=s3.S3ChecksumLocation.TRAILER)


class Uploader:
    """Starts PUTs without waiting for them; `wait()` returns once every one is stored, or raises.

    Once more than `in_flight` uploads are unfinished, `put` waits for the oldest, so the bodies a chunk
    holds stay bounded (by `in_flight` plus one per thread calling `put`) however fast downloads arrive.
    """

    def __init__(self, bucket: str, in_flight: int) -> None:
        self._target = _target(bucket)
        self._client = _client(self._target.tls, self._target.host)
        self._in_flight = in_flight
        self._lock = threading.Lock()
        self._unfinished: deque[tuple[str, Future[None]]] = deque()
        self._awaited: list[tuple[str, Future[None]]] = []

    def put(self, key: str, data: bytes, content_type: str) -> None:
        started = self._client.make_request(
            type=s3.S3RequestType.PUT_OBJECT,
            request=self._target.request("PUT", key, data, content_type=content_type),
            checksum_config=_CHECKSUM,
        )
        with self._lock:
            self._unfinished.append((key, started.finished_future))
            oldest = self._unfinished.popleft() if len(self._unfinished) > self._in_flight else None
            if oldest:
                self._awaited.append(oldest)
        if oldest:
            oldest[1].exception()

    def wait(self) -> None:
        with self._lock:
            uploads = [*self._awaited, *self._unfinished]
            self._awaited, self._unfinished = [], deque()
        failures = [(key, error) for key, future in uploads if (error := future.exception()) is not None]
        if failures:
            key, error = failures[0]
            raise UploadFailed(f"{len(failures)} of {len(uploads)} uploads failed; {key}: {_describe(error)}")


def upload_part(bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
    """Store `body` as part `number` of a multipart upload; its ETag. boto3's `upload_part` sends a body from
    Python a few KiB at a time, and each send gives up the interpreter lock: beside a thread that builds the
    archive, every send then waited its turn for the lock, and a 5 MiB part took 530 ms instead of 65 ms here
    (24 parts to the local stack's emulator, one busy thread beside them). The CRT sends it natively."""
    target = _target(bucket)
    answered: dict[str, str] = {}
    started = _client(target.tls, target.host).make_request(
        type=s3.S3RequestType.DEFAULT,
        operation_name="UploadPart",
        request=target.request("PUT", key, body, urlencode({"partNumber": number, "uploadId": upload_id})),
        checksum_config=_CHECKSUM,
        on_headers=lambda headers, **_: answered.update((name.lower(), value) for name, value in headers),
    )
    try:
        started.finished_future.result()
    except Exception as error:
        raise UploadFailed(f"{key}, part {number}: {_describe(error)}") from error
    return answered["etag"]


class Reader:
    """Reads whole objects of one bucket; `get` may be called from many threads at once."""

    def __init__(self, bucket: str) -> None:
        self._target = _target(bucket)
        self._client = _client(self._target.tls, self._target.host)

    def get(self, key: str) -> bytes:
        parts: list[bytes] = []
        started = self._client.make_request(
            type=s3.S3RequestType.GET_OBJECT,
            request=self._target.request("GET", key),
            on_body=lambda chunk, **_: parts.append(chunk),  # in order: the CRT delivers a body sequentially
        )
        try:
            started.finished_future.result()
        except s3.S3ResponseError as error:
            if _code(error) == "NoSuchKey":
                raise ObjectMissing(key) from error
            raise ReadFailed(f"{key}: {_describe(error)}") from error
        return b"".join(parts)


def _describe(error: BaseException) -> str:
    """`HTTP 404 NoSuchBucket: The specified bucket does not exist` from S3's XML error, else the CRT's text."""
    if not isinstance(error, s3.S3ResponseError):
        return str(error)
    root = _error_document(error)
    if root is None:
        detail = (error.body or b"").decode(errors="replace")[:300]
    else:
        detail = f"{root.findtext('Code')}: {root.findtext('Message')}"
    return f"HTTP {error.status_code} {detail}".strip()


def _code(error: s3.S3ResponseError) -> str | None:
    root = _error_document(error)
    return None if root is None else root.findtext("Code")


def _error_document(error: s3.S3ResponseError) -> ElementTree.Element | None:
    try:
        return ElementTree.fromstring(error.body or b"")
    except ElementTree.ParseError:
        return None
