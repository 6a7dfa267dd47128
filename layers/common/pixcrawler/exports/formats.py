"""Archive writers (zip, tar, tar.gz) that stream into a non-seekable writer and can stop at any entry
boundary and continue later, possibly in another process, producing the very bytes an unbroken run would
have continued with.

The state kept between invocations is small: for tar the stream offset (the end-of-archive padding depends
on it); for zip every entry's offset, CRC and sizes, which the central directory at the end must list; for
tar.gz nothing more, because each invocation writes its own gzip member (a gzip file may hold several
members in a row and every reader joins them).
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any, Protocol

from pixcrawler.exports.manifest import LINK_COLUMNS, CsvRows, JsonArray, JsonLines, RowWriter, TextSink
from pixcrawler.exports.multipart import MultipartWriter
from pixcrawler.schemas.export import ExportFormat

GZIP_LEVEL = 6
_ZIP_FIELDS = (
    "filename",
    "date_time",
    "compress_type",
    "flag_bits",
    "external_attr",
    "create_version",
    "extract_version",
    "CRC",
    "compress_size",
    "file_size",
    "header_offset",
)


class Archive(Protocol):
    def add(self, path: str, data: bytes, mtime: datetime) -> None: ...
    def add_stream(self, path: str, stream: IO[bytes], size: int, mtime: datetime) -> None: ...
    def suspend(self) -> dict[str, Any]:
        """Push every byte written so far into the writer; return the state `open_archive` resumes from."""
        ...

    def close(self) -> None: ...
    def abandon(self) -> None:
        """Stop writing for good; garbage collection must not append end records to the stream."""
        ...


class ZipArchive:
    """Images are STORED: deflate shrinks JPEG/PNG/WebP by about nothing at three times the CPU; text
    entries (manifests) are deflated."""

    def __init__(self, out: MultipartWriter, state: dict[str, Any] | None) -> None:
        self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        for values in (state or {}).get("entries", []):
            info = zipfile.ZipInfo(values[0], tuple(values[1]))  # type: ignore[arg-type]
            for name, value in zip(_ZIP_FIELDS[2:], values[2:], strict=True):
                setattr(info, name, value)
            self._zip.filelist.append(info)
            self._zip.NameToInfo[info.filename] = info

    @staticmethod
    def _info(path: str, mtime: datetime, size: int, compress_type: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, mtime.timetuple()[:6])
        info.external_attr = 0o644 << 16
        info.compress_type = compress_type
        info.file_size = size
        return info

    def add(self, path: str, data: bytes, mtime: datetime) -> None:
        self._zip.writestr(self._info(path, mtime, len(data), zipfile.ZIP_STORED), data)

    def add_stream(self, path: str, stream: IO[bytes], size: int, mtime: datetime) -> None:
        with self._zip.open(self._info(path, mtime, size, zipfile.ZIP_DEFLATED), "w") as target:
            shutil.copyfileobj(stream, target)

    def suspend(self) -> dict[str, Any]:
        entries = [[getattr(info, name) for name in _ZIP_FIELDS] for info in self._zip.filelist]
        self.abandon()
        return {"entries": entries}

    def close(self) -> None:
        self._zip.close()

    def abandon(self) -> None:
        self._zip.fp = None


class TarArchive:
    """POSIX pax tar, optionally inside gzip (one member per invocation)."""

    def __init__(self, out: MultipartWriter, state: dict[str, Any] | None, compress: bool) -> None:
        self._gzip = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) if compress else None
        self._tar = tarfile.TarFile(fileobj=self._gzip or out, mode="w", format=tarfile.PAX_FORMAT)
        self._tar.offset = (state or {}).get("offset", 0)

    @staticmethod
    def _info(path: str, size: int, mtime: datetime) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode = size, int(mtime.timestamp()), 0o644
        return info

    def add(self, path: str, data: bytes, mtime: datetime) -> None:
        self.add_stream(path, io.BytesIO(data), len(data), mtime)

    def add_stream(self, path: str, stream: IO[bytes], size: int, mtime: datetime) -> None:
        self._tar.addfile(self._info(path, size, mtime), stream)
        # tarfile remembers every member it wrote (not in typeshed); a stream has no use for them
        self._tar.members.clear()  # type: ignore[attr-defined]

    def suspend(self) -> dict[str, Any]:
        if self._gzip is not None:
            self._gzip.close()
        return {"offset": self._tar.offset}

    def close(self) -> None:
        self._tar.close()
        if self._gzip is not None:
            self._gzip.close()

    def abandon(self) -> None:
        if self._gzip is not None:
            self._gzip.fileobj = None  # type: ignore[assignment]


def open_archive(fmt: ExportFormat, out: MultipartWriter, state: dict[str, Any] | None) -> Archive:
    if fmt is ExportFormat.ZIP:
        return ZipArchive(out, state)
    if fmt in (ExportFormat.TAR, ExportFormat.TAR_GZ):
        return TarArchive(out, state, compress=fmt is ExportFormat.TAR_GZ)
    raise ValueError(f"{fmt} is not an archive format")


CONTENT_TYPES = {
    ExportFormat.ZIP: "application/zip",
    ExportFormat.TAR: "application/x-tar",
    ExportFormat.TAR_GZ: "application/gzip",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.JSONL: "application/x-ndjson",
}
ARCHIVES = frozenset({ExportFormat.ZIP, ExportFormat.TAR, ExportFormat.TAR_GZ})


class Utf8Sink:
    """Text into a byte stream, for csv/json writers."""

    def __init__(self, out: IO[bytes] | MultipartWriter) -> None:
        self._out = out

    def write(self, text: str, /) -> int:
        self._out.write(text.encode())
        return len(text)


ROW_WRITERS: dict[ExportFormat, Callable[[TextSink, tuple[str, ...], int], RowWriter]] = {
    ExportFormat.CSV: CsvRows,
    ExportFormat.JSON: JsonArray,
    ExportFormat.JSONL: JsonLines,
}


class Document:
    """A csv/json/jsonl export: the manifest alone, one row per image with its storage key and a link."""

    def __init__(self, fmt: ExportFormat, out: MultipartWriter, state: dict[str, Any] | None) -> None:
        self._written = (state or {}).get("written", 0)
        self._rows = ROW_WRITERS[fmt](Utf8Sink(out), LINK_COLUMNS, self._written)

    def begin(self) -> None:
        self._rows.begin()

    def add(self, values: dict[str, Any]) -> None:
        self._rows.write(values)
        self._written += 1

    def suspend(self) -> dict[str, Any]:
        return {"written": self._written}

    def close(self) -> None:
        self._rows.end()

    def abandon(self) -> None:
        pass
