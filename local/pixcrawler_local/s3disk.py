"""S3 on disk: the part of the S3 REST API the product speaks, served from the data dir as a WSGI app.

Why not moto for objects: measured here, moto's server answers 115-260 PUTs or GETs a second, by load (its
per-request dispatch and bookkeeping), keeps every object in memory, and joins a multipart upload and answers a GET by
holding the whole object in memory, so a 2 GB export costs 2 GB or more. The well-kept S3 servers that store
on disk (MinIO, Garage, SeaweedFS) do not install by package name on these machines, and `s3rver` from npm
managed 198 PUTs a second and failed `ListObjectsV2`. This app streams every body between the server and one
file per object, so memory stays flat whatever is stored, and it answers in a fraction of a millisecond.

What it speaks, path-style as boto3 and the CRT address a custom endpoint: CreateBucket, HeadBucket,
PutObject, GetObject and HeadObject (single byte ranges, conditional requests, presigned links with their
expiry and `response-*` overrides), DeleteObject, DeleteObjects, ListObjectsV2 (prefix, start-after,
continuation, `encoding-type=url`; no delimiter), and multipart uploads (create, upload part, complete with
S3's 5 MiB minimum, abort, list by prefix: an export's clean-up aborts whatever upload a killed invocation
left). Bodies may be `aws-chunked` with a trailing checksum, as the CRT and recent boto3
send them; the checksum is verified (crc32, crc32c, crc64nvme, sha1, sha256) and a mismatch is refused as S3
refuses it. As in S3, an object keeps the checksum it was sent with and names it in the PUT's answer, in a
whole-object GET that asks for it (`x-amz-checksum-mode: ENABLED`, which boto3 sends and then checks the
body against) and in listings. Anything else, a query parameter it does not serve included, is answered 501
`NotImplemented`, naming the request. Signatures are not checked: this is a single-user development stack on
loopback. tests/local/test_s3disk.py holds it to moto's S3 request for request, and to S3 where moto departs.

On disk, under the root: `<bucket>/<xx>/<sha256 of the key>`, one file per object holding a JSON header
(key, size, ETag, content type and the other headers kept, metadata, checksum) then the bytes, written to a
temporary name and renamed into place before the answer leaves, so a `kill -9` leaves the old object or the
new one, never a mix; `.uploads/<id>/` holds a multipart upload's parts until it is completed or aborted. The
index of keys, with the size, ETag, time and checksum algorithm a listing shows, is a private temporary SQLite
database (`KeyIndex`) that listings walk in order, rebuilt from the file headers at start: its B-tree lives on
disk past a fixed page cache, so the emulator's memory stays the same whatever it stores (a set of keys in
memory cost 220-280 bytes an object, 8-11 MiB at 20,000 photos and their thumbnails). The rest of a header
(content type, metadata, the headers kept) is read from the object's file when a GET or HEAD asks for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote

from awscrt import checksums

from pixcrawler_local.loopserver import HEADER_NAMES

StartResponse = Callable[..., Any]
NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MIN_PART_SIZE = 5 << 20
BLOCK = 64 << 10
"""Bytes of a body or a file read or written at a time. (Behind cheroot, whose socket reader was `_pyio`'s
pure-Python one, a block of 1 MiB made each 8 MiB export part arriving cost 3-4 MiB at once.)"""
MAX_LINE = 8192
"""The longest `aws-chunked` frame line read (a chunk's size with its signature, or a trailer)."""
_HEADER = struct.Struct("<Q")
_CHECKSUMS: dict[str, Callable[[], _Checksum]] = {}


class S3Error(Exception):
    """An S3 error response: status, code and message, sent as S3's XML error document."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Checksum:
    """One running checksum over a body, by S3's algorithm name; `digest()` is base64, as S3 headers carry it."""

    def __init__(self, update: Callable[[bytes, Any], Any], start: Any, width: int) -> None:
        self._update, self._value, self._width = update, start, width

    def update(self, data: bytes) -> None:
        self._value = self._update(data, self._value)

    def digest(self) -> str:
        raw = self._value.digest() if hasattr(self._value, "digest") else self._value.to_bytes(self._width, "big")
        return base64.b64encode(raw).decode()


def _crt(function: Callable[[bytes, int], int], width: int) -> Callable[[], _Checksum]:
    return lambda: _Checksum(lambda data, value: function(data, value), 0, width)


def _hashlib(name: str) -> Callable[[], _Checksum]:
    def update(data: bytes, value: Any) -> Any:
        value.update(data)
        return value

    return lambda: _Checksum(update, hashlib.new(name), 0)


_CHECKSUMS.update(
    {
        "crc32": _crt(checksums.crc32, 4),
        "crc32c": _crt(checksums.crc32c, 4),
        "crc64nvme": _crt(checksums.crc64nvme, 8),
        "sha1": _hashlib("sha1"),
        "sha256": _hashlib("sha256"),
    }
)


@dataclass
class Entry:
    """An object as the index and every answer about it need it; the header of its file."""

    key: str
    size: int
    etag: str
    last_modified: str
    content_type: str = "binary/octet-stream"
    content_disposition: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    checksum: dict[str, str] = field(default_factory=dict)
    """The checksum the client sent with the body (verified), as S3 keeps it: `{"crc32": "<base64>"}` or empty."""
    headers: dict[str, str] = field(default_factory=dict)
    """The other headers S3 keeps with an object and answers with it (`_KEPT_HEADERS`), as they were sent."""

    @property
    def modified(self) -> datetime:
        return datetime.fromisoformat(self.last_modified)


class Body:
    """A request body as it was meant: `aws-chunked` framing removed and its trailing checksum, or a checksum
    sent as a header, verified once the last byte is read."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._stream: IO[bytes] = environ["wsgi.input"]
        self._remaining = int(environ.get("CONTENT_LENGTH") or 0)
        self._chunked = "aws-chunked" in environ.get("HTTP_CONTENT_ENCODING", "")
        names = [name for name in _CHECKSUMS if f"HTTP_X_AMZ_CHECKSUM_{name.upper()}" in environ]
        trailer = environ.get("HTTP_X_AMZ_TRAILER", "").strip().lower().removeprefix("x-amz-checksum-")
        announced = environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", "").lower()
        self._algorithm = trailer if trailer in _CHECKSUMS else (names[0] if names else None)
        if self._algorithm is None and announced in _CHECKSUMS:
            self._algorithm = announced
        if environ.get("HTTP_X_AMZ_TRAILER") and self._algorithm != trailer:
            raise S3Error(400, "InvalidRequest", f"Unsupported trailing checksum: {environ['HTTP_X_AMZ_TRAILER']}")
        self._expected = environ.get(f"HTTP_X_AMZ_CHECKSUM_{(self._algorithm or '').upper()}")
        self._checksum = _CHECKSUMS[self._algorithm]() if self._algorithm else None
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def _raw(self, size: int) -> bytes:
        data = self._stream.read(min(size, self._remaining)) if self._remaining else b""
        self._remaining -= len(data)
        return data

    def _line(self) -> bytes:
        """One CRLF-ended line of `aws-chunked` framing, read as a line (a byte at a time cost a PUT more
        interpreter time than the rest of its body)."""
        line = self._stream.readline(min(MAX_LINE, self._remaining)) if self._remaining else b""
        self._remaining -= len(line)
        if not line.endswith(b"\r\n"):
            raise S3Error(400, "IncompleteBody", "The request body ended inside an aws-chunked frame.")
        return line[:-2]

    def blocks(self) -> Iterator[bytes]:
        for data in self._chunks() if self._chunked else self._plain():
            self.md5.update(data)
            if self._checksum:
                self._checksum.update(data)
            self.size += len(data)
            yield data
        if self._checksum and self._expected is not None and self._checksum.digest() != self._expected:
            raise S3Error(400, "BadDigest", f"The {self._algorithm} you specified did not match the calculated one.")

    @property
    def checksum(self) -> dict[str, str]:
        """The body's checksum by algorithm, once read: the one the client sent or announced, else none."""
        return {self._algorithm: self._checksum.digest()} if self._algorithm and self._checksum else {}

    def _plain(self) -> Iterator[bytes]:
        while data := self._raw(BLOCK):
            yield data

    def _chunks(self) -> Iterator[bytes]:
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                break
            while size:
                data = self._raw(min(size, BLOCK))
                if not data:
                    raise S3Error(400, "IncompleteBody", "The request body ended inside an aws-chunked chunk.")
                size -= len(data)
                yield data
            self._line()
        while line := self._line():
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == f"x-amz-checksum-{self._algorithm}":
                self._expected = value.strip()

    def read(self) -> bytes:
        return b"".join(self.blocks())


class Listed(NamedTuple):
    """What a listing says of an object, kept in the index so that a listing opens no object file."""

    key: str
    size: int
    etag: str
    last_modified: str
    checksums: str
    """The algorithms of the checksum kept with the object, comma-separated (S3 keeps at most one)."""

    @classmethod
    def of(cls, entry: Entry) -> Listed:
        return cls(entry.key, entry.size, entry.etag, entry.last_modified, ",".join(entry.checksum))


class KeyIndex:
    """The objects of every bucket, in key order, with what a listing shows of each, in a private temporary SQLite
    database: SQLite keeps it in a file it deletes when the connection closes, and holds at most `CACHE_KIB` of
    its pages in memory. Not durable and not meant to be: the object files are the truth, and `DiskS3` rebuilds
    the index from their headers at start. Not thread-safe: the caller serialises every call (`DiskS3._lock`).

    The cache is small so that it is full at any size: 2 MiB held the whole index of 2,000 photos and their
    thumbnails (0.3 MiB, keys only) but 2 MiB of the 2.7 MiB at 20,000, so the emulator's peak grew with the
    data. Pages past it are read from the kernel's page cache: 40,000 keys, 3.0-3.2 against 3.4 us a lookup,
    6 us an insert and 85-93 ms to list them all at either size. Until 2026-12-07 it held keys only and a
    listing read each object's header from its file, under the lock: 0.45-0.6 s of the emulator's CPU for the
    4,000 keys of a 2,000-photo crawl's orphan check."""

    CACHE_KIB = 256

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{self.CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE keys (bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,"
            " last_modified TEXT NOT NULL, checksums TEXT NOT NULL, PRIMARY KEY (bucket, key)) WITHOUT ROWID"
        )

    def add(self, bucket: str, objects: Iterable[Listed]) -> None:
        """Index objects, replacing what was indexed under their keys."""
        with self._db:  # one transaction, however many objects
            self._db.executemany(
                "INSERT OR REPLACE INTO keys VALUES (?, ?, ?, ?, ?, ?)", ((bucket, *listed) for listed in objects)
            )

    def remove(self, bucket: str, key: str) -> bool:
        """Forget a key; whether it was there."""
        return self._db.execute("DELETE FROM keys WHERE bucket = ? AND key = ?", (bucket, key)).rowcount > 0

    def __contains__(self, bucket_key: tuple[str, str]) -> bool:
        return self._db.execute("SELECT 1 FROM keys WHERE bucket = ? AND key = ?", bucket_key).fetchone() is not None

    def page(self, bucket: str, prefix: str, after: str, limit: int) -> list[Listed]:
        """Up to `limit` objects whose keys start with `prefix` and sort after `after`, in order (UTF-8 byte
        order, which is S3's: SQLite compares text by its bytes). The keys with a prefix are one run in that
        order, so the walk ends at the first key past it instead of at the end of the bucket."""
        found: list[Listed] = []
        rows = self._db.execute(
            "SELECT key, size, etag, last_modified, checksums FROM keys"
            " WHERE bucket = ? AND key >= ? AND key > ? ORDER BY key LIMIT ?",
            (bucket, prefix, after, limit),
        )
        for row in rows:
            if not row[0].startswith(prefix):
                break
            found.append(Listed(*row))
        return found

    def count(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM keys").fetchone()
        return int(count)


class DiskS3:
    """The WSGI app; one instance per data dir."""

    def __init__(self, root: Path, region: str = "us-east-1") -> None:
        self.root, self.region = root, region
        self._uploads = root / ".uploads"
        self._lock = threading.Lock()
        self._buckets: set[str] = set()
        self._index = KeyIndex()
        self._load()

    # --- the index ------------------------------------------------------------------------------------------

    def _load(self) -> None:
        """Rebuild the index from the object files; remove what a killed process left half written."""
        self.root.mkdir(parents=True, exist_ok=True)
        for bucket in (path for path in self.root.iterdir() if path.is_dir() and not path.name.startswith(".")):
            self._buckets.add(bucket.name)
            for path in bucket.glob(".*.part"):
                path.unlink()
            for path in bucket.glob("*/.*"):
                path.unlink()
            self._index.add(bucket.name, (Listed.of(_stored_header(path)) for path in bucket.glob("*/*")))

    def object_count(self) -> int:
        return self._index.count()

    def _path(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.root / bucket / digest[:2] / digest

    def _check_bucket(self, bucket: str) -> None:
        if bucket not in self._buckets:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist")

    def _open(self, bucket: str, key: str) -> IO[bytes]:
        """The object's file, opened under the lock: a replace or delete cannot slip between the index and the
        open, and the open file keeps the version it found, header and bytes, however long it is read."""
        with self._lock:
            self._check_bucket(bucket)
            if (bucket, key) not in self._index:
                raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
            return self._path(bucket, key).open("rb")

    def _commit(self, bucket: str, entry: Entry, partial: Path) -> None:
        """Move a fully written object file into place, then index it: a reader never sees half an object.
        The key's folder is made the first time one of its 256 is needed, not asked for on every PUT."""
        final = self._path(bucket, entry.key)
        with self._lock:
            try:
                os.replace(partial, final)
            except FileNotFoundError:
                final.parent.mkdir(exist_ok=True)
                os.replace(partial, final)
            self._index.add(bucket, [Listed.of(entry)])

    def _store(self, bucket: str, blocks: Iterable[bytes], described: Callable[[], Entry]) -> Entry:
        """Write an object file under a temporary name (a slot for the header's offset, the bytes, then the
        header `described()` returns once they are all written) and rename it into place; a body that fails
        on the way leaves no file behind."""
        partial = self._partial(bucket)
        try:
            with partial.open("wb") as out:
                out.write(_HEADER.pack(0))
                for block in blocks:
                    out.write(block)
                entry = described()
                _write_header(out, entry)
            self._commit(bucket, entry, partial)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return entry

    def _partial(self, bucket: str) -> Path:
        return self.root / bucket / f".{uuid.uuid4().hex}.part"

    # --- WSGI -----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._dispatch(environ, start_response)
        except S3Error as error:
            body = _error(start_response, error)
            return [] if environ["REQUEST_METHOD"] == "HEAD" else body

    def _dispatch(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        bucket, _, key = environ["PATH_INFO"].encode("latin-1").decode("utf-8").lstrip("/").partition("/")
        query = {name: values[0] for name, values in parse_qs(environ.get("QUERY_STRING", ""), True).items()}
        handler: Callable[..., Iterable[bytes]] | None
        if not key and method == "GET" and "uploads" in query:
            handler = self._list_uploads
        elif not key:
            handler = {
                ("PUT", False): self._create_bucket,
                ("HEAD", False): self._head_bucket,
                ("GET", True): self._list,
                ("POST", True): self._delete_many,
            }.get((method, method == "GET" or "delete" in query))
        elif "uploadId" in query:
            handler = {"PUT": self._upload_part, "POST": self._complete, "DELETE": self._abort}.get(method)
        elif "uploads" in query:
            handler = self._create_upload if method == "POST" else None
        else:
            handler = {
                "PUT": self._put,
                "GET": self._get,
                "HEAD": self._get,
                "DELETE": self._delete,
            }.get(method)
        unknown = [name for name in query if handler and not _understood(handler.__name__, name)]
        if handler is None or unknown or "HTTP_X_AMZ_COPY_SOURCE" in environ:
            asked = f"{method} {environ['PATH_INFO']}" + (f"?{unknown[0]}" if unknown else "")
            raise S3Error(501, "NotImplemented", f"The local S3 does not implement {asked}")
        return handler(environ, start_response, bucket, key, query)

    # --- buckets --------------------------------------------------------------------------------------------

    def _create_bucket(self, environ: dict[str, Any], start: StartResponse, bucket: str, *_: Any) -> Iterable[bytes]:
        Body(environ).read()
        (self.root / bucket).mkdir(exist_ok=True)
        with self._lock:
            self._buckets.add(bucket)
        return _reply(start, 200, b"", {"Location": f"/{bucket}"})

    def _head_bucket(self, environ: dict[str, Any], start: StartResponse, bucket: str, *_: Any) -> Iterable[bytes]:
        self._check_bucket(bucket)
        return _reply(start, 200, b"", {"x-amz-bucket-region": self.region})

    def _list(
        self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, query: dict[str, str]
    ) -> Iterable[bytes]:
        if query.get("list-type") != "2":
            raise S3Error(501, "NotImplemented", "The local S3 lists with ListObjectsV2 only (list-type=2).")
        if query.get("delimiter"):
            raise S3Error(501, "NotImplemented", "The local S3 lists without a delimiter (no CommonPrefixes).")
        prefix, limit = query.get("prefix", ""), _max_keys(query.get("max-keys", "1000"))
        after = max(query.get("start-after", ""), _untoken(query.get("continuation-token", "")))
        with self._lock:
            self._check_bucket(bucket)
            listed = self._index.page(bucket, prefix, after, limit + 1)  # one more says whether it is truncated
        page = listed[:limit]
        encode = _key_encoder(query)
        result = ET.Element("ListBucketResult", xmlns=NS)
        for name, value in (("Name", bucket), ("Prefix", encode(prefix)), ("KeyCount", str(len(page)))):
            ET.SubElement(result, name).text = value
        ET.SubElement(result, "MaxKeys").text = str(limit)
        truncated = 0 < limit < len(listed)  # as moto answers max-keys=0: an empty page, not truncated
        ET.SubElement(result, "IsTruncated").text = "true" if truncated else "false"
        if query.get("encoding-type") == "url":
            ET.SubElement(result, "EncodingType").text = "url"
        if "continuation-token" in query:
            ET.SubElement(result, "ContinuationToken").text = query["continuation-token"]
        if "start-after" in query:
            ET.SubElement(result, "StartAfter").text = encode(query["start-after"])
        for entry in page:
            item = ET.SubElement(result, "Contents")
            ET.SubElement(item, "Key").text = encode(entry.key)
            modified = datetime.fromisoformat(entry.last_modified)
            ET.SubElement(item, "LastModified").text = modified.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            ET.SubElement(item, "ETag").text = f'"{entry.etag}"'
            for algorithm in filter(None, entry.checksums.split(",")):
                ET.SubElement(item, "ChecksumAlgorithm").text = algorithm.upper()
            ET.SubElement(item, "Size").text = str(entry.size)
            ET.SubElement(item, "StorageClass").text = "STANDARD"
        if truncated:
            ET.SubElement(result, "NextContinuationToken").text = _token(page[-1].key)
        return _xml(start, 200, result)

    def _delete_many(self, environ: dict[str, Any], start: StartResponse, bucket: str, *_: Any) -> Iterable[bytes]:
        request = _document(Body(environ).read())
        result = ET.Element("DeleteResult", xmlns=NS)
        quiet = (request.findtext(f"{{{NS}}}Quiet") or request.findtext("Quiet") or "").lower() == "true"
        for element in request.iter():
            if element.tag.rpartition("}")[2] == "Key" and element.text is not None:
                self._remove(bucket, element.text)
                if not quiet:
                    ET.SubElement(ET.SubElement(result, "Deleted"), "Key").text = element.text
        return _xml(start, 200, result)

    # --- objects --------------------------------------------------------------------------------------------

    def _put(self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, *_: Any) -> Iterable[bytes]:
        self._check_bucket(bucket)
        body = Body(environ)

        def described() -> Entry:
            entry = _entry_from(environ, key, body.size, body.md5.hexdigest())
            entry.checksum = body.checksum
            return entry

        entry = self._store(bucket, body.blocks(), described)
        return _reply(start, 200, b"", {"ETag": f'"{entry.etag}"', **_checksum_headers(entry.checksum)})

    def _get(
        self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, query: dict[str, str]
    ) -> Iterable[bytes]:
        _check_expiry(query)
        opened = self._open(bucket, key)
        try:
            entry = _read_header(opened)
            modified = _unmodified_since_asked(environ, entry)
            first, last, status = _range(environ.get("HTTP_RANGE"), entry.size)
        except BaseException:
            opened.close()
            raise
        stored = opened if modified and environ["REQUEST_METHOD"] == "GET" else None
        if stored is None:
            opened.close()
        validators = {"ETag": f'"{entry.etag}"', "Last-Modified": format_datetime(entry.modified, usegmt=True)}
        if not modified:
            start("304 Not Modified", list(validators.items()))
            return []
        headers = {
            "Content-Type": entry.content_type,
            **validators,
            "Accept-Ranges": "bytes",
            **{f"x-amz-meta-{name}": value for name, value in entry.metadata.items()},
        }
        if entry.content_disposition:
            headers["Content-Disposition"] = entry.content_disposition
        headers.update(entry.headers)
        headers.update({header: query[name] for name, header in _OVERRIDES.items() if name in query})
        if status == 206:
            headers["Content-Range"] = f"bytes {first}-{last}/{entry.size}"
        elif environ.get("HTTP_X_AMZ_CHECKSUM_MODE", "").upper() == "ENABLED":
            headers.update(_checksum_headers(entry.checksum))
        headers["Content-Length"] = str(last - first + 1)
        start(f"{status} {'Partial Content' if status == 206 else 'OK'}", list(headers.items()))
        if stored is None:
            return []
        stored.seek(_HEADER.size + first)
        return _file_blocks(stored, last - first + 1)

    def _delete(self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, *_: Any) -> Iterable[bytes]:
        self._check_bucket(bucket)
        self._remove(bucket, key)
        return _reply(start, 204, b"")

    def _remove(self, bucket: str, key: str) -> None:
        with self._lock:
            self._check_bucket(bucket)
            if self._index.remove(bucket, key):
                self._path(bucket, key).unlink(missing_ok=True)

    # --- multipart uploads ----------------------------------------------------------------------------------

    def _upload_dir(self, bucket: str, key: str, upload_id: str) -> Path:
        folder = self._uploads / upload_id
        try:
            started = json.loads((folder / "upload.json").read_text())
        except (FileNotFoundError, ValueError):
            raise S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.") from None
        if (started["bucket"], started["key"]) != (bucket, key):
            raise S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.")
        return folder

    def _create_upload(
        self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, *_: Any
    ) -> Iterable[bytes]:
        self._check_bucket(bucket)
        Body(environ).read()
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir(parents=True)
        started = asdict(_entry_from(environ, key, 0, ""))
        (folder / "upload.json").write_text(json.dumps({"bucket": bucket, **started}))
        result = ET.Element("InitiateMultipartUploadResult", xmlns=NS)
        for name, value in (("Bucket", bucket), ("Key", key), ("UploadId", upload_id)):
            ET.SubElement(result, name).text = value
        return _xml(start, 200, result)

    def _upload_part(
        self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, query: dict[str, str]
    ) -> Iterable[bytes]:
        folder = self._upload_dir(bucket, key, query["uploadId"])
        number = int(query.get("partNumber", "0"))
        if not 1 <= number <= 10000:
            raise S3Error(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.")
        body, partial = Body(environ), folder / f".{uuid.uuid4().hex}.part"
        try:
            with partial.open("wb") as out:
                for block in body.blocks():
                    out.write(block)
            os.replace(partial, folder / f"{number:05d}.{body.md5.hexdigest()}")
        finally:
            partial.unlink(missing_ok=True)
        for older in folder.glob(f"{number:05d}.*"):
            if older.name != f"{number:05d}.{body.md5.hexdigest()}":
                older.unlink(missing_ok=True)
        return _reply(start, 200, b"", {"ETag": f'"{body.md5.hexdigest()}"', **_checksum_headers(body.checksum)})

    def _complete(
        self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, query: dict[str, str]
    ) -> Iterable[bytes]:
        folder = self._upload_dir(bucket, key, query["uploadId"])
        request = _document(Body(environ).read())
        asked = [
            (int(part.findtext(f"{{{NS}}}PartNumber") or 0), (part.findtext(f"{{{NS}}}ETag") or "").strip('"'))
            for part in request.iter(f"{{{NS}}}Part")
        ]
        if not asked:
            raise _malformed()
        if [number for number, _ in asked] != sorted({number for number, _ in asked}):
            raise S3Error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        paths = [folder / f"{number:05d}.{etag}" for number, etag in asked]
        if missing := [number for (number, _), path in zip(asked, paths, strict=True) if not path.is_file()]:
            raise S3Error(400, "InvalidPart", f"Part {missing[0]} was not uploaded or its ETag does not match.")
        if any(path.stat().st_size < MIN_PART_SIZE for path in paths[:-1]):
            raise S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size.")
        started = json.loads((folder / "upload.json").read_text())
        digest = hashlib.md5(b"".join(bytes.fromhex(etag) for _, etag in asked), usedforsecurity=False)
        entry = Entry(
            key=key,
            size=sum(path.stat().st_size for path in paths),
            etag=f"{digest.hexdigest()}-{len(paths)}",
            last_modified=datetime.now(UTC).isoformat(),
            content_type=started["content_type"],
            content_disposition=started["content_disposition"],
            metadata=started["metadata"],
            headers=started.get("headers", {}),
        )
        self._store(bucket, _parts(paths), lambda: entry)
        shutil.rmtree(folder, ignore_errors=True)
        result = ET.Element("CompleteMultipartUploadResult", xmlns=NS)
        location = f"{environ['wsgi.url_scheme']}://{environ.get('HTTP_HOST', '')}/{bucket}/{quote(key)}"
        for name, value in (("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", f'"{entry.etag}"')):
            ET.SubElement(result, name).text = value
        return _xml(start, 200, result)

    def _abort(
        self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, query: dict[str, str]
    ) -> Iterable[bytes]:
        shutil.rmtree(self._upload_dir(bucket, key, query["uploadId"]))
        return _reply(start, 204, b"")

    def _list_uploads(
        self, environ: dict[str, Any], start: StartResponse, bucket: str, key: str, query: dict[str, str]
    ) -> Iterable[bytes]:
        """ListMultipartUploads under a prefix, every match on one page: a development stack holds a few."""
        self._check_bucket(bucket)
        prefix, found = query.get("prefix", ""), []
        for path in self._uploads.glob("*/upload.json"):
            try:
                started = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):  # completed or aborted meanwhile
                continue
            if started["bucket"] == bucket and started["key"].startswith(prefix):
                found.append((started["key"], path.parent.name, datetime.fromisoformat(started["last_modified"])))
        encode = _key_encoder(query)
        result = ET.Element("ListMultipartUploadsResult", xmlns=NS)
        for name, value in (("Bucket", bucket), ("Prefix", encode(prefix)), ("IsTruncated", "false")):
            ET.SubElement(result, name).text = value
        if query.get("encoding-type") == "url":
            ET.SubElement(result, "EncodingType").text = "url"
        for upload_key, upload_id, initiated in sorted(found):
            item = ET.SubElement(result, "Upload")
            ET.SubElement(item, "Key").text = encode(upload_key)
            ET.SubElement(item, "UploadId").text = upload_id
            ET.SubElement(item, "Initiated").text = initiated.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return _xml(start, 200, result)


def _key_encoder(query: dict[str, str]) -> Callable[[str], str]:
    """How a listing writes keys: URL-encoded when the request says `encoding-type=url` (botocore always
    does, and decodes them again), else as they are."""
    if query.get("encoding-type") == "url":
        return lambda text: quote(text, safe="/")
    return lambda text: text


def _parts(paths: list[Path]) -> Iterator[bytes]:
    """The bytes of a multipart upload's parts, in order, a block at a time."""
    for path in paths:
        with path.open("rb") as part:
            while block := part.read(BLOCK):
                yield block


def _malformed() -> S3Error:
    message = "The XML you provided was not well-formed or did not validate against our published schema"
    return S3Error(400, "MalformedXML", message)


def _document(body: bytes) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        raise _malformed() from None


def _entry_from(environ: dict[str, Any], key: str, size: int, etag: str) -> Entry:
    """WSGI folds `-` and `_` in header names into `_`; S3 keeps `x-amz-meta-my_key` apart from `my-key`, so the
    spelling the server recorded (`HEADER_NAMES`) names the metadata when there is one."""
    spelled = environ.get(HEADER_NAMES, {})
    metadata = {
        spelled.get(name, name.replace("_", "-")).lower().removeprefix("http-").removeprefix("x-amz-meta-"): value
        for name, value in environ.items()
        if name.startswith("HTTP_X_AMZ_META_")
    }
    return Entry(
        key=key,
        size=size,
        etag=etag,
        last_modified=datetime.now(UTC).isoformat(),
        content_type=environ.get("CONTENT_TYPE") or "binary/octet-stream",
        content_disposition=environ.get("HTTP_CONTENT_DISPOSITION"),
        metadata=metadata,
        headers={name: value for name, value in _kept_headers(environ).items() if value},
    )


_KEPT_HEADERS = ("Cache-Control", "Content-Encoding", "Content-Language", "Expires")


def _kept_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The headers of `_KEPT_HEADERS` a PUT or CreateMultipartUpload sent; `aws-chunked` is the request's own
    framing, not the object's encoding, and S3 drops it from Content-Encoding."""
    sent = {name: environ.get(f"HTTP_{name.upper().replace('-', '_')}", "") for name in _KEPT_HEADERS}
    encodings = [part.strip() for part in sent["Content-Encoding"].split(",")]
    sent["Content-Encoding"] = ",".join(part for part in encodings if part and part != "aws-chunked")
    return sent


def _checksum_headers(checksum: dict[str, str]) -> dict[str, str]:
    """`x-amz-checksum-crc32: <base64>`, as S3 answers a PUT that carried a checksum, and a whole-object GET
    that asked for it (`x-amz-checksum-mode: ENABLED`, which boto3 sends and then verifies the body against)."""
    return {f"x-amz-checksum-{algorithm}": value for algorithm, value in checksum.items()}


def _write_header(out: IO[bytes], entry: Entry) -> None:
    """The header goes after the bytes (whose size and MD5 are known only then) and its offset at the start."""
    offset = out.tell()
    out.write(json.dumps(vars(entry)).encode())
    out.seek(0)
    out.write(_HEADER.pack(offset))


def _stored_header(path: Path) -> Entry:
    with path.open("rb") as stored:
        return _read_header(stored)


def _read_header(stored: IO[bytes]) -> Entry:
    (offset,) = _HEADER.unpack(stored.read(_HEADER.size))
    stored.seek(offset)
    return Entry(**json.loads(stored.read()))


def _file_blocks(stored: IO[bytes], size: int) -> Iterator[bytes]:
    with stored:
        while size > 0 and (data := stored.read(min(size, BLOCK))):
            size -= len(data)
            yield data


def _range(header: str | None, size: int) -> tuple[int, int, int]:
    """(first byte, last byte, status) for a `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` header (one range, as
    S3 serves). A header that is no such range (another unit, several ranges, no numbers, the last byte before
    the first) is ignored, as HTTP lets a server ignore it and S3 does: the whole object, 200."""
    match = re.fullmatch(r"bytes=\s*(\d*)-(\d*)\s*", header or "")
    if not match or match.groups() == ("", "") or (all(match.groups()) and int(match[2]) < int(match[1])):
        return 0, size - 1, 200
    if not match[1]:
        first, last = max(size - int(match[2]), 0), size - 1
    else:
        first, last = int(match[1]), min(int(match[2]), size - 1) if match[2] else size - 1
    if first >= size or first > last:
        raise S3Error(416, "InvalidRange", "The requested range is not satisfiable")
    return first, last, 206


_OVERRIDES = {
    f"response-{name.lower()}": name
    for name in (
        "Content-Type",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Cache-Control",
        "Expires",
    )
}
"""The query parameters of a GET (a presigned link's, mostly) that replace a header of the answer, as in S3."""


_PARAMETERS = {
    "_list": {"list-type", "prefix", "max-keys", "start-after", "continuation-token", "encoding-type", "fetch-owner"},
    "_delete_many": {"delete"},
    "_get": set(_OVERRIDES),
    "_create_upload": {"uploads"},
    "_upload_part": {"uploadId", "partNumber"},
    "_complete": {"uploadId"},
    "_abort": {"uploadId"},
    "_list_uploads": {"uploads", "prefix", "encoding-type"},
}
"""The query parameters each handler serves. Any other names a subresource or an option it would ignore (a
`?tagging` PUT would replace the object with the tagging document, a `?partNumber` GET answer the whole
object): refused with 501 instead."""


def _understood(handler: str, parameter: str) -> bool:
    """botocore adds `x-id` (the operation's name) and a presigned link its `X-Amz-*` signature to any request."""
    return parameter in _PARAMETERS.get(handler, set()) or parameter == "x-id" or parameter.startswith("X-Amz-")


def _unmodified_since_asked(environ: dict[str, Any], entry: Entry) -> bool:
    """False when a conditional GET or HEAD is to be answered 304 Not Modified; raises 412 PreconditionFailed
    when it is to be refused, with S3's precedence (If-Match over If-Unmodified-Since, If-None-Match over
    If-Modified-Since). boto3's downloads send If-Match with the ETag they started with."""
    etag, modified = f'"{entry.etag}"', entry.modified.replace(microsecond=0)

    def matches(header: str) -> bool:
        return any(tag.strip() in (etag, entry.etag) for tag in environ[header].split(","))

    def since(header: str) -> datetime | None:
        try:
            return parsedate_to_datetime(environ[header]) if header in environ else None
        except (TypeError, ValueError):
            return None

    if "HTTP_IF_MATCH" in environ:
        if not matches("HTTP_IF_MATCH"):
            raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    elif (unmodified := since("HTTP_IF_UNMODIFIED_SINCE")) and modified > unmodified:
        raise S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
    if "HTTP_IF_NONE_MATCH" in environ:
        return not matches("HTTP_IF_NONE_MATCH")
    return not ((modified_since := since("HTTP_IF_MODIFIED_SINCE")) and modified <= modified_since)


def _check_expiry(query: dict[str, str]) -> None:
    """A presigned link past `X-Amz-Date + X-Amz-Expires` is refused, as S3 refuses it."""
    if "X-Amz-Date" in query and "X-Amz-Expires" in query:
        signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if datetime.now(UTC) > signed + timedelta(seconds=int(query["X-Amz-Expires"])):
            raise S3Error(403, "AccessDenied", "Request has expired")


def _max_keys(text: str) -> int:
    if not text.isdigit():
        raise S3Error(400, "InvalidArgument", "Provided max-keys not an integer or within integer range")
    return min(int(text), 1000)


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(unquote(token).encode()).decode()
    except ValueError:
        raise S3Error(400, "InvalidArgument", "The continuation token provided is incorrect") from None


def _reply(start: StartResponse, status: int, body: bytes, headers: dict[str, str] | None = None) -> list[bytes]:
    reasons = {200: "OK", 204: "No Content"}
    start(f"{status} {reasons.get(status, 'OK')}", [("Content-Length", str(len(body))), *(headers or {}).items()])
    return [body]


def _xml(start: StartResponse, status: int, element: ET.Element) -> list[bytes]:
    body = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return _reply(start, status, body, {"Content-Type": "application/xml"})


def _error(start: StartResponse, error: S3Error) -> list[bytes]:
    document = ET.Element("Error")
    ET.SubElement(document, "Code").text = error.code
    ET.SubElement(document, "Message").text = error.message
    body = ET.tostring(document, encoding="utf-8", xml_declaration=True)
    start(f"{error.status} {error.code}", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]
