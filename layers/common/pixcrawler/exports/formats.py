"""Archive writers (zip, tar, tar.gz) that stream into a non-seekable writer and can stop at any entry
boundary and continue later, possibly in another process, producing the very bytes an unbroken run would
have continued with.

The state kept between invocations is small and does not grow with the entries written: for tar the stream
offset (the end-of-archive padding depends on it); for zip how many central-directory records earlier
invocations stored beside the upload (see `zipdirectory`); for tar.gz nothing more, because each invocation
writes its own gzip member (a gzip file may hold several members in a row and every reader joins them).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, ClassVar, Protocol

from pixcrawler.exports import croissant, items, layout, manifest
from pixcrawler.exports.checkpoint import Written
from pixcrawler.exports.multipart import MiB, MultipartWriter
from pixcrawler.exports.zipdirectory import CentralDirectory
from pixcrawler.models import Image
from pixcrawler.schemas.export import ExportFormat, ExportLayout, ExportOptions

GZIP_LEVEL = 6
SPOOL_IN_MEMORY = MiB


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
    entries (manifests) are deflated. `zipfile` writes each entry; its central-directory record goes to a
    `CentralDirectory` at once, so neither memory nor the checkpoint grows with the entries written."""

    def __init__(self, out: MultipartWriter, state: dict[str, Any] | None) -> None:
        self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._directory = CentralDirectory(out, state)

    @staticmethod
    def _info(path: str, mtime: datetime, size: int, compress_type: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, mtime.timetuple()[:6])
        info.external_attr = 0o644 << 16
        info.compress_type = compress_type
        info.file_size = size
        return info

    def add(self, path: str, data: bytes, mtime: datetime) -> None:
        self._zip.writestr(self._info(path, mtime, len(data), zipfile.ZIP_STORED), data)
        self._take_records()

    def add_stream(self, path: str, stream: IO[bytes], size: int, mtime: datetime) -> None:
        with self._zip.open(self._info(path, mtime, size, zipfile.ZIP_DEFLATED), "w") as target:
            shutil.copyfileobj(stream, target)
        self._take_records()

    def _take_records(self) -> None:
        for info in self._zip.filelist:
            self._directory.add(info)
        self._zip.filelist.clear()
        self._zip.NameToInfo.clear()

    def suspend(self) -> dict[str, Any]:
        state = self._directory.suspend()
        self.abandon()
        return state

    def close(self) -> None:
        """The directory and end records come from `CentralDirectory`; `zipfile`, holding no entries, must not
        write its own."""
        self._directory.write_end()
        self._zip.fp = None

    def abandon(self) -> None:
        self._zip.fp = None
        self._directory.close()


class TarArchive:
    """POSIX pax tar, optionally inside gzip (one member per invocation)."""

    def __init__(self, out: MultipartWriter, state: dict[str, Any] | None, compress: bool) -> None:
        self._gzip = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) if compress else None
        self._tar = tarfile.TarFile(fileobj=self._gzip or out, mode="w", format=tarfile.PAX_FORMAT)
        self._tar.offset = (state or {}).get("offset", 0)

    @property
    def offset(self) -> int:
        """Bytes of tar written so far (before any gzip)."""
        return self._tar.offset

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
    return TarArchive(out, state, compress=fmt is ExportFormat.TAR_GZ)


CONTENT_TYPES = {
    ExportFormat.ZIP: "application/zip",
    ExportFormat.TAR: "application/x-tar",
    ExportFormat.TAR_GZ: "application/gzip",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.JSONL: "application/x-ndjson",
    ExportFormat.WEBDATASET: "application/x-tar",
}
ARCHIVES = frozenset({ExportFormat.ZIP, ExportFormat.TAR, ExportFormat.TAR_GZ})


class Output(Protocol):
    """One export file being written, whatever its format: the stream calls these and nothing else.

    `reads_images` says whether `write` uses the image's bytes: an archive holds them, a document only links
    them, so the stream fetches them from storage only for an output that reads them."""

    reads_images: ClassVar[bool]

    def write(self, image: Image, path: str, data: bytes, written: Written | None = None) -> None: ...
    def suspend(self) -> dict[str, Any]:
        """Push every byte written so far into the writer; return the state `open_output` resumes from."""
        ...

    def close(self) -> None:
        """Write what follows the last image (extra files, end records, a closing bracket)."""
        ...

    def abandon(self) -> None:
        """Stop writing for good; garbage collection must not append end records to the stream."""
        ...


@dataclass(frozen=True, slots=True)
class Listing:
    """What an output needs beyond one image at a time: the export's name, date and options, its entries
    (image, path and output facts) read again in order for the files that follow the images, a link for a
    storage key and, for an export with splits, each image's split."""

    title: str
    published: datetime
    options: ExportOptions
    entries: Callable[[], Iterable[items.Entry]]
    link: Callable[[str], str]
    split_of: Callable[[Image], str] | None = None


def open_output(fmt: ExportFormat, out: MultipartWriter, state: dict[str, Any] | None, listing: Listing) -> Output:
    """The output for `fmt`, fresh when `state` is None, else continuing from what `suspend` returned."""
    if fmt in ARCHIVES:
        return ArchiveOutput(open_archive(fmt, out, state), listing)
    return manifest.Document(manifest.ROW_WRITERS[fmt], out, state, listing.link, listing.split_of)


class ArchiveOutput:
    """The images as archive entries, then the extra files: the manifest, Hugging Face metadata (one per
    split folder in an export with splits), the attribution file and, with splits, `splits.json`."""

    reads_images: ClassVar[bool] = True

    def __init__(self, archive: Archive, listing: Listing) -> None:
        self._archive, self._listing = archive, listing

    def write(self, image: Image, path: str, data: bytes, written: Written | None = None) -> None:
        self._archive.add(path, data, image.created_at)

    def suspend(self) -> dict[str, Any]:
        return self._archive.suspend()

    def close(self) -> None:
        self._add_extras()
        self._archive.close()

    def abandon(self) -> None:
        self._archive.abandon()

    def _add_extras(self) -> None:
        """The extra files come from a second read of the same rows, after the images, spooled to memory and
        then /tmp past 1 MiB each: tar needs each entry's size before its bytes. `croissant.json` comes last:
        it lists the others with the sha256 of the very bytes spooled."""
        listing = self._listing
        options, split_of = listing.options, listing.split_of
        columns = manifest.COLUMNS
        with ExitStack() as stack:
            files: dict[str, IO[bytes]] = {}

            def spool(name: str) -> IO[bytes]:
                files[name] = stack.enter_context(tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY))
                return files[name]

            attribution = manifest.Utf8Sink(spool(layout.ATTRIBUTION_FILE))
            attribution.write(manifest.attribution_header(listing.title))
            tables: list[manifest.RowWriter] = []
            if options.include_manifest:
                tables.append(manifest.CsvRows(manifest.Utf8Sink(spool(layout.MANIFEST_FILE)), columns))
            hf = options.layout is ExportLayout.HF_IMAGEFOLDER
            if hf and split_of is None:
                tables.append(manifest.JsonLines(manifest.Utf8Sink(spool(layout.HF_METADATA)), columns))
            split_metadata: dict[str, manifest.RowWriter] = {}
            counts: dict[str, Counter[str]] = {name: Counter() for name in sorted(options.splits or {})}
            for table in tables:
                table.begin()
            credits = croissant.Credits()
            for image, path, written in listing.entries():
                attribution.write(manifest.attribution_entry(image, path))
                split = None if split_of is None else split_of(image)
                values = manifest.row(image, path, written, split)
                credits.add(values)
                for table in tables:
                    table.write(values)
                if split is not None:
                    counts[split][image.keyword or ""] += 1
                    if hf:
                        if split not in split_metadata:
                            metadata = spool(f"{split}/{layout.HF_METADATA}")
                            split_metadata[split] = manifest.JsonLines(manifest.Utf8Sink(metadata), columns)
                        split_metadata[split].write({**values, "file_name": path.removeprefix(f"{split}/")})
            for table in tables:
                table.end()
            if split_of is not None:
                spool(layout.SPLITS_FILE).write(_splits_document(options, counts).encode())
            listed = [_spooled(name, stream) for name, stream in files.items()]
            for file in listed:
                self._archive.add_stream(file.name, files[file.name], file.size, listing.published)
            description = croissant.document(
                title=listing.title,
                published=listing.published,
                credits=credits,
                files=listed,
                records=next((name for name in layout.RECORD_FILES if name in files), None),
            )
            document = croissant.encode(description)
            self._archive.add_stream(layout.CROISSANT_FILE, io.BytesIO(document), len(document), listing.published)


def _splits_document(options: ExportOptions, counts: dict[str, Counter[str]]) -> str:
    """`splits.json`: the splits asked for, the seed, and the images per split and label, as in the job's
    `split_counts` (the second read of the rows counts them, so the file matches the archive it is in)."""
    document = {
        "splits": {name: (options.splits or {})[name] for name in sorted(options.splits or {})},
        "split_seed": options.split_seed,
        "counts": {split: dict(sorted(per_label.items())) for split, per_label in counts.items()},
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _spooled(name: str, stream: IO[bytes]) -> croissant.DistributionFile:
    """A spooled root file as `croissant.json` lists it (size and sha256 of its bytes), rewound for the archive."""
    size = stream.tell()
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(MiB):
        digest.update(chunk)
    stream.seek(0)
    return croissant.DistributionFile(name, size, digest.hexdigest(), layout.media_type(name))
