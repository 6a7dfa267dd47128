"""Manifest rows, the Hugging Face metadata file and the attribution file, written as text streams.

One row shape serves every manifest: the archive manifest (`manifest.csv`), `metadata.jsonl` of the
`hf_imagefolder` layout and the csv/json/jsonl exports, which add each image's storage key and a link.

Titles and creators come verbatim from providers, so every writer assumes hostile text: CSV cells a
spreadsheet would run as a formula are neutralised, JSON keeps every string exact but cannot be split by a
line separator, and the attribution file keeps one field per line.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Callable
from typing import IO, Any, ClassVar, Protocol

from pixcrawler.exports import splits
from pixcrawler.exports.checkpoint import Written
from pixcrawler.exports.multipart import MultipartWriter
from pixcrawler.models import Image
from pixcrawler.schemas.export import ExportFormat

COLUMNS = (
    "file_name",
    "label",
    "split",
    "original_url",
    "source_url",
    "title",
    "width",
    "height",
    "format",
    "file_size",
    "sha256",
    "provider",
    "license",
    "license_url",
    "creator",
    "output_width",
    "output_height",
    "output_format",
    "output_file_size",
    "output_sha256",
)
"""The original's facts, then the file in the export (`output_*`): the same unless the export resized or
re-encoded it."""
LINK_COLUMNS = ("image_id", *COLUMNS, "storage_key", "url")
FORMULA_START = "=+-@\uff1d\uff0b\uff0d\uff20"
"""What makes Excel, LibreOffice or Google Sheets read a cell as a formula (full-width forms included)."""
_CELL_TRAPS = ("\t", "\r", "\n", "\x00")
_FORMULA_PREFIXES = tuple(FORMULA_START)
_JSON_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})
_SEPARATING = frozenset(("Cc", "Zl", "Zp", "Zs"))


def row(image: Image, file_name: str, written: Written, split: str | None = None) -> dict[str, Any]:
    """The image's manifest row: the original's facts, then the file the export holds (`written`); `split` is
    the export's split for the image (`train` without splits)."""
    return {
        "file_name": file_name,
        "label": image.keyword,
        "split": split or splits.DEFAULT_SPLIT,
        "original_url": image.original_url,
        "source_url": image.source_url,
        "title": image.title,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "file_size": image.file_size,
        "sha256": image.sha256,
        "provider": image.provider,
        "license": image.license,
        "license_url": image.license_url,
        "creator": image.creator,
        "output_width": written.width,
        "output_height": written.height,
        "output_format": written.format,
        "output_file_size": written.file_size,
        "output_sha256": written.sha256,
    }


class TextSink(Protocol):
    def write(self, text: str, /) -> int: ...


class Utf8Sink:
    """Text into a byte stream, for csv/json writers."""

    def __init__(self, out: IO[bytes] | MultipartWriter) -> None:
        self._out = out

    def write(self, text: str, /) -> int:
        self._out.write(text.encode())
        return len(text)


class RowWriter(Protocol):
    """Streams rows; `begin`/`end` frame the document and run once per export, not per invocation."""

    def begin(self) -> None: ...
    def write(self, values: dict[str, Any]) -> None: ...
    def end(self) -> None: ...


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet shows as text (OWASP CSV injection): a single quote goes before a cell that
    starts with a control character or, after any leading space, with a formula character."""
    if isinstance(value, str) and (value.startswith(_CELL_TRAPS) or value.lstrip().startswith(_FORMULA_PREFIXES)):
        return f"'{value}"
    return value


def json_text(values: dict[str, Any]) -> str:
    """One JSON document on one line. U+2028, U+2029 and U+0085 are escaped (JSON allows them raw, but
    `str.splitlines()` and older JavaScript break lines there); the decoded strings stay exact."""
    return json.dumps(values, ensure_ascii=False).translate(_JSON_LINE_BREAKS)


def one_line(text: str) -> str:
    """`text` on one line: runs of control and separator characters become one space and invisible format
    characters (bidirectional controls among them) go, so a field can neither start a line of its own nor
    reorder what follows it. Printable text (the common case) takes the fast path: it holds none of these."""
    if text.isprintable():
        return " ".join(text.split())
    kept = (
        " " if category in _SEPARATING else char for char in text if (category := unicodedata.category(char)) != "Cf"
    )
    return " ".join("".join(kept).split())


class CsvRows:
    """Every cell quoted (a stray carriage return or separator stays inside its cell) and neutralised."""

    def __init__(self, sink: TextSink, columns: tuple[str, ...], written: int = 0) -> None:
        self._csv = csv.DictWriter(
            sink, fieldnames=columns, extrasaction="raise", lineterminator="\n", quoting=csv.QUOTE_ALL
        )

    def begin(self) -> None:
        self._csv.writeheader()

    def write(self, values: dict[str, Any]) -> None:
        self._csv.writerow({column: spreadsheet_safe(value) for column, value in values.items()})

    def end(self) -> None:
        pass


class JsonLines:
    def __init__(self, sink: TextSink, columns: tuple[str, ...], written: int = 0) -> None:
        self._sink = sink

    def begin(self) -> None:
        pass

    def write(self, values: dict[str, Any]) -> None:
        self._sink.write(json_text(values) + "\n")

    def end(self) -> None:
        pass


class JsonArray:
    """A JSON array written element by element; `written` (rows already out) decides the separator, so a
    resumed export continues the same array."""

    def __init__(self, sink: TextSink, columns: tuple[str, ...], written: int = 0) -> None:
        self._sink, self._written = sink, written

    def begin(self) -> None:
        self._sink.write("[")

    def write(self, values: dict[str, Any]) -> None:
        self._sink.write(("\n" if self._written == 0 else ",\n") + json_text(values))
        self._written += 1

    def end(self) -> None:
        self._sink.write("\n]\n")


ROW_WRITERS: dict[ExportFormat, Callable[[TextSink, tuple[str, ...], int], RowWriter]] = {
    ExportFormat.CSV: CsvRows,
    ExportFormat.JSON: JsonArray,
    ExportFormat.JSONL: JsonLines,
}


class Document:
    """A csv/json/jsonl export: the manifest alone, one row per image with its storage key and a link (the
    `link` callable signs one) and, given `split_of`, its split. Its `Output` state is the number of rows
    written, which the JSON array needs to continue with the right separator."""

    reads_images: ClassVar[bool] = False

    def __init__(
        self,
        rows: Callable[[TextSink, tuple[str, ...], int], RowWriter],
        out: MultipartWriter,
        state: dict[str, Any] | None,
        link: Callable[[str], str],
        split_of: Callable[[Image], str] | None = None,
    ) -> None:
        self._written = (state or {}).get("written", 0)
        self._rows = rows(Utf8Sink(out), LINK_COLUMNS, self._written)
        self._link, self._split_of = link, split_of
        if state is None:
            self._rows.begin()

    def write(self, image: Image, path: str, data: bytes, written: Written | None = None) -> None:
        url = self._link(image.storage_url)
        split = None if self._split_of is None else self._split_of(image)
        values = row(image, path, Written.original(image), split)
        self._rows.write({"image_id": image.id, **values, "storage_key": image.storage_url, "url": url})
        self._written += 1

    def suspend(self) -> dict[str, Any]:
        return {"written": self._written}

    def close(self) -> None:
        self._rows.end()

    def abandon(self) -> None:
        pass


def attribution_header(title: str) -> str:
    return (
        f"Attribution for {one_line(title)}\n"
        "Every image in this dataset is listed with its creator, licence and source. Keep this file with\n"
        "the images when you share them: most open licences require the credit.\n"
    )


def attribution_entry(image: Image, path: str) -> str:
    """An image's credit block; every field is put on one line, so a title cannot forge a credit line."""
    licence = one_line(image.license or "unknown")
    lines = [
        "",
        path,
        f"  Title: {one_line(image.title or '') or '(untitled)'}",
        f"  Creator: {one_line(image.creator or '') or 'unknown'}",
        f"  License: {licence} ({one_line(image.license_url)})" if image.license_url else f"  License: {licence}",
        f"  Source: {one_line(image.source_url or image.original_url)}",
    ]
    return "\n".join(lines) + "\n"
