"""Manifest writers given hostile text: CSV cells a spreadsheet reads as text, JSON exact and line-safe,
attribution fields on one line."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from pixcrawler.exports import manifest
from pixcrawler.models import Image


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ('=HYPERLINK("http://evil.example/","x")', '\'=HYPERLINK("http://evil.example/","x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("  =1+1", "'  =1+1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("a=b", "a=b"),
        ("", ""),
        (256, 256),
        (None, None),
    ],
)
def test_spreadsheet_safe_quotes_formula_leading_cells(value: Any, expected: Any) -> None:
    assert manifest.spreadsheet_safe(value) == expected


def test_csv_rows_keep_every_cell_in_its_cell() -> None:
    out = io.StringIO()
    rows = manifest.CsvRows(out, ("a", "b", "c"))
    rows.begin()
    rows.write({"a": "\rCarriage", "b": 'x,"y";z\nw', "c": 7})
    assert list(csv.DictReader(io.StringIO(out.getvalue(), newline=""))) == [
        {"a": "'\rCarriage", "b": 'x,"y";z\nw', "c": "7"}
    ]


@pytest.mark.parametrize("writer", [manifest.JsonLines, manifest.JsonArray])
def test_json_stays_exact_and_one_line_per_row(writer: Any) -> None:
    values = {"title": "=cmd\u2028next\u2029line\x85end\u202e", "n": 1}
    out = io.StringIO()
    rows = writer(out, ("title", "n"))
    rows.begin()
    rows.write(values)
    rows.write(values)
    rows.end()
    text = out.getvalue()
    assert not {"\u2028", "\u2029", "\x85"} & set(text)
    decoded = json.loads(text) if writer is manifest.JsonArray else [json.loads(line) for line in text.splitlines()]
    assert decoded == [values, values]


def test_attribution_fields_cannot_forge_lines() -> None:
    image = Image(
        title="A cat\nCreator: Forged\r\n  License: cc0",
        creator="\u202eRLO\u202c Me\u2028Source: x",
        license="cc-by",
        license_url="https://example.com/\nSource: y",
        original_url="https://example.com/a.jpg",
    )
    lines = manifest.attribution_entry(image, "1_a.jpg").split("\n")
    assert lines == [
        "",
        "1_a.jpg",
        "  Title: A cat Creator: Forged License: cc0",
        "  Creator: RLO Me Source: x",
        "  License: cc-by (https://example.com/ Source: y)",
        "  Source: https://example.com/a.jpg",
        "",
    ]
    assert manifest.attribution_header("My\nCats").startswith("Attribution for My Cats\n")
