"""`croissant.json`: the export described in MLCommons Croissant 1.0, the JSON-LD that Hugging Face, Kaggle,
OpenML and `mlcroissant` read.

The document is built from pure inputs (the export's title and date, the credits collected from its manifest
rows, the files it is made of with their sizes and sha256, and which of them holds the records), so every
export that ships one (an archive's root files; an export made of several objects, where it is one more
object) calls `document` with its own file list rather than repeating the shape.

The record set reads the manifest: one record per image with its label, split, licence, creator, source URL,
sha256, width and height. In an archive the image itself comes from the image files beside the manifest,
joined on the manifest's `file_name` (the file's path relative to `croissant.json`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
VERSION = "1.0.0"
JSON = "application/json"
RECORD_SET = "images"
IMAGE_FILES = "image-files"
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
"""Media types by file extension; JPEG and PNG first, which `mlcroissant` decodes (with Pillow, any format)."""

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The Croissant 1.0 context, inline so that no reader has to fetch anything."""

RECORD_FIELDS = (
    ("label", "label", "sc:Text", "The class label: the keyword the image was found for."),
    ("split", "split", "sc:Text", "The split the image belongs to (train, validation, test)."),
    ("license", "license", "sc:Text", "The image's licence, as the provider states it."),
    ("license_url", "license_url", "sc:URL", "The licence's text."),
    ("creator", "creator", "sc:Text", "Who made the image; most open licences require the credit."),
    ("source_url", "source_url", "sc:URL", "The page the image was found on."),
    ("sha256", "sha256", "sc:Text", "SHA-256 of the image file, hexadecimal."),
    ("width", "width", "sc:Integer", "Width in pixels."),
    ("height", "height", "sc:Integer", "Height in pixels."),
)
"""The record set's fields read from the manifest: (field name, manifest column, data type, description)."""


@dataclass(frozen=True, slots=True)
class DistributionFile:
    """A file of the export as a reader finds it beside `croissant.json` (or downloads it): its name (a
    path relative to `croissant.json`), size in bytes, sha256 of its bytes and media type."""

    name: str
    size: int
    sha256: str
    encoding_format: str


@dataclass(slots=True)
class Credits:
    """What the document says about the images as a whole, collected one manifest row at a time: creators
    and licences (each once, in first-seen order, so the same rows give the same document), labels and the
    image files' extensions and folder depths (for the file set's patterns)."""

    images: int = 0
    creators: dict[str, None] = field(default_factory=dict)
    licenses: dict[tuple[str, str | None], None] = field(default_factory=dict)
    labels: dict[str, None] = field(default_factory=dict)
    patterns: dict[str, str] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        self.images += 1
        if row.get("creator"):
            self.creators[row["creator"]] = None
        if row.get("license") or row.get("license_url"):
            self.licenses[(row.get("license") or row["license_url"], row.get("license_url"))] = None
        self.labels[row.get("label") or ""] = None
        path = str(row["file_name"])
        extension = posixpath.splitext(path)[1].lower()
        pattern = "*/" * path.count("/") + f"*{extension}"
        self.patterns.setdefault(pattern, IMAGE_TYPES.get(extension, "application/octet-stream"))


def document(
    *,
    title: str,
    published: datetime,
    credits: Credits,
    files: Sequence[DistributionFile],
    records: str | None,
    image_files: bool = True,
) -> dict[str, Any]:
    """The Croissant document of an export whose manifest rows are in the file named `records` (a csv, JSON
    or JSON Lines file among `files`); without a records file it describes the dataset and its files but no
    record set.

    With `image_files` the images sit beside `croissant.json` under the manifest's `file_name` paths (an
    archive) and each record's image is the file; without, the rows only link them (a csv/json/jsonl export)
    and the image field is the row's `url`. `published` fixes `datePublished` (the export job's creation
    time, so a resumed export writes the same bytes)."""
    distribution = [_file_object(file) for file in files]
    if image_files:
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": IMAGE_FILES,
                "name": IMAGE_FILES,
                "description": "The image files, at the paths the manifest's file_name column gives.",
                "encodingFormat": sorted(set(credits.patterns.values()), key=_reading_order),
                "includes": list(credits.patterns),
            }
        )
    metadata: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": title,
        "description": _description(title, credits),
        "version": VERSION,
        "datePublished": published.isoformat(),
        "citeAs": _citation(title, published),
        "creator": [{"@type": "sc:Person", "name": creator} for creator in credits.creators],
        "license": [_license(name, url) for name, url in credits.licenses],
        "keywords": list(credits.labels),
        "distribution": distribution,
    }
    if records is not None:
        encoding = next(file.encoding_format for file in files if file.name == records)
        metadata["recordSet"] = [_record_set(records, encoding, image_files)]
    return metadata


def encode(metadata: Mapping[str, Any]) -> bytes:
    """The document's bytes: the same document always gives the same bytes."""
    return (json.dumps(metadata, ensure_ascii=False, indent=2) + "\n").encode()


def _reading_order(media_type: str) -> tuple[int, str]:
    return (0 if media_type in ("image/jpeg", "image/png") else 1, media_type)


def _description(title: str, credits: Credits) -> str:
    labels = ", ".join(label or "(no label)" for label in credits.labels)
    return (
        f"{title}: {credits.images} web images collected by PixCrawler for the labels {labels}. Each record "
        "carries the image, its label, split, licence, creator and source; keep the credits when you share "
        "the images (ATTRIBUTION.txt)."
    )


def _citation(title: str, published: datetime) -> str:
    return f"{title} ({published.year}). Image dataset exported by PixCrawler. See ATTRIBUTION.txt for credits."


def _license(name: str, url: str | None) -> dict[str, Any]:
    work: dict[str, Any] = {"@type": "sc:CreativeWork", "name": name}
    if url:
        work["url"] = url
    return work


def _file_object(file: DistributionFile) -> dict[str, Any]:
    return {
        "@type": "cr:FileObject",
        "@id": file.name,
        "name": file.name,
        "contentUrl": file.name,
        "contentSize": f"{file.size} B",
        "encodingFormat": file.encoding_format,
        "sha256": file.sha256,
    }


def _record_set(records: str, encoding: str, image_files: bool) -> dict[str, Any]:
    """One record per manifest row. Beside image files, the image's path is the join key: the file set's
    path of each image file, matched against the manifest's `file_name` (the regex turns the path into text
    for the join)."""

    def column(name: str) -> dict[str, Any]:
        extract = {"jsonPath": f"$[*].{name}"} if encoding == JSON else {"column": name}
        return {"fileObject": {"@id": records}, "extract": extract}

    fields: list[tuple[str, str, str, dict[str, Any]]] = [
        (name, data_type, description, column(source)) for name, source, data_type, description in RECORD_FIELDS
    ]
    if image_files:
        image = {"fileSet": {"@id": IMAGE_FILES}, "extract": {"fileProperty": "content"}}
        path = {
            "fileSet": {"@id": IMAGE_FILES},
            "extract": {"fileProperty": "fullpath"},
            "transform": {"regex": "^(.*)$"},
        }
        fields[:0] = [
            ("image", "sc:ImageObject", "The image.", image),
            ("file_name", "sc:Text", "The image's path relative to croissant.json.", path),
        ]
    else:
        fields[:0] = [
            ("image", "sc:URL", "A link to the image, valid for the export's link lifetime.", column("url")),
            ("file_name", "sc:Text", "The image's path in an archive export of the same images.", column("file_name")),
        ]
    return {
        "@type": "cr:RecordSet",
        "@id": RECORD_SET,
        "name": RECORD_SET,
        "description": "One record per image.",
        "key": {"@id": f"{RECORD_SET}/file_name"},
        "field": [
            {
                "@type": "cr:Field",
                "@id": f"{RECORD_SET}/{name}",
                "name": name,
                "description": description,
                "dataType": data_type,
                "source": source,
                **({"references": column("file_name")} if image_files and name == "file_name" else {}),
            }
            for name, data_type, description, source in fields
        ],
    }
