"""Manifest rows, the Hugging Face metadata file and the attribution file, written as text streams.

One row shape serves every manifest: the archive manifest (`manifest.csv`), `metadata.jsonl` of the
`hf_imagefolder` layout and the csv/json/jsonl exports, which add each image's storage key and a link.
"""

from __future__ import annotations

import csv
import json
from typing import Any, Protocol

from pixcrawler.models import Image

COLUMNS = (
    "file_name",
    "label",
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
)
LINK_COLUMNS = ("image_id", *COLUMNS, "storage_key", "url")


def row(image: Image, file_name: str) -> dict[str, Any]:
    return {
        "file_name": file_name,
        "label": image.keyword,
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
    }


class TextSink(Protocol):
    def write(self, text: str, /) -> int: ...


class RowWriter(Protocol):
    """Streams rows; `begin`/`end` frame the document and run once per export, not per invocation."""

    def begin(self) -> None: ...
    def write(self, values: dict[str, Any]) -> None: ...
    def end(self) -> None: ...


class CsvRows:
    def __init__(self, sink: TextSink, columns: tuple[str, ...], written: int = 0) -> None:
        self._csv = csv.DictWriter(sink, fieldnames=columns, extrasaction="raise", lineterminator="\n")

    def begin(self) -> None:
        self._csv.writeheader()

    def write(self, values: dict[str, Any]) -> None:
        self._csv.writerow(values)

    def end(self) -> None:
        pass


class JsonLines:
    def __init__(self, sink: TextSink, columns: tuple[str, ...], written: int = 0) -> None:
        self._sink = sink

    def begin(self) -> None:
        pass

    def write(self, values: dict[str, Any]) -> None:
        self._sink.write(json.dumps(values, ensure_ascii=False) + "\n")

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
        self._sink.write(("\n" if self._written == 0 else ",\n") + json.dumps(values, ensure_ascii=False))
        self._written += 1

    def end(self) -> None:
        self._sink.write("\n]\n")


def attribution_header(title: str) -> str:
    return (
        f"Attribution for {title}\n"
        "Every image in this dataset is listed with its creator, licence and source. Keep this file with\n"
        "the images when you share them: most open licences require the credit.\n"
    )


def attribution_entry(image: Image, path: str) -> str:
    lines = [
        "",
        path,
        f"  Title: {image.title or '(untitled)'}",
        f"  Creator: {image.creator or 'unknown'}",
        f"  License: {image.license or 'unknown'}" + (f" ({image.license_url})" if image.license_url else ""),
        f"  Source: {image.source_url or image.original_url}",
    ]
    return "\n".join(lines) + "\n"
