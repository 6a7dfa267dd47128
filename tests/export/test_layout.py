"""Archive names: one safe segment per name, whatever the web sent."""

from __future__ import annotations

import pytest

from pixcrawler.exports import layout
from pixcrawler.schemas.export import ExportLayout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("../../etc/passwd", "etc_passwd"),
        ("..", "fallback"),
        ("/", "fallback"),
        ("", "fallback"),
        (None, "fallback"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ("CON .txt", "_CON .txt"),
        ("COM\u00b9", "_COM\u00b9"),
        ("lpt\u00b3.jpg", "_lpt\u00b3.jpg"),
        ("CONIN$", "_CONIN$"),
        ("conout$. .", "_conout$"),
        ("con.tar.gz", "_con.tar.gz"),
        ("AUX\u202e", "_AUX"),
        ("CONSOLE", "CONSOLE"),
        ("\u202egpj.exe", "gpj.exe"),
        (
            "a\u202ab\u202bc\u202cd\u202de\u2066f\u2067g\u2068h\u2069i\u200ej\u200fk\u061cl\u200bm\ufeff",
            "abcdefghijklm",
        ),
        ("e\u0301\u200d", "\u00e9"),
        ("=cmd|' /C calc'!A0", "cmd_' _C calc'!A0"),
        ("-+@\uff1dx", "x"),
        ("a\x00b\nc", "a_b_c"),
        ("  spaced   out. ", "spaced out"),
        ("Ｃａｆé", "Ｃａｆé"),
        ("猫" * 100, "猫" * 40),
    ],
)
def test_safe_segment(text: str | None, expected: str) -> None:
    assert layout.safe_segment(text, "fallback") == expected


def test_file_names_keep_the_stored_extension_and_the_id() -> None:
    assert layout.file_name(7, "../../x/evil.exe", "projects/1/k/abc.jpg") == "7_evil.jpg"
    assert layout.file_name(8, "C:\\Users\\me\\Cat.PNG", "projects/1/k/abc.png") == "8_Cat.png"
    assert layout.file_name(9, None, "projects/1/k/abc") == "9_image.bin"


def test_export_file_names_are_never_windows_device_names() -> None:
    assert layout.export_file_name("CON", "tar.gz") == "_con.tar.gz"
    assert layout.export_file_name("My Cats", "zip") == "my-cats.zip"


def test_label_folders_never_take_the_names_of_the_files_beside_them() -> None:
    folders = layout.label_folders(["manifest.csv", "ATTRIBUTION.TXT", " metadata.jsonl.", "Manifest.csv-2"])
    assert folders == {
        " metadata.jsonl.": "metadata.jsonl-2",
        "ATTRIBUTION.TXT": "ATTRIBUTION.TXT-2",
        "Manifest.csv-2": "Manifest.csv-2",
        "manifest.csv": "manifest.csv-3",
    }


def test_label_folders_are_distinct_even_ignoring_case() -> None:
    folders = layout.label_folders(["Cat", "cat", "CAT", None, "", "a/b", "a_b"])
    assert folders == {"": "unlabeled", "CAT": "CAT", "Cat": "Cat-2", "a/b": "a_b", "a_b": "a_b-2", "cat": "cat-3"}
    assert layout.archive_path(ExportLayout.FLAT, "cat", "1_x.jpg") == "1_x.jpg"
    assert layout.archive_path(ExportLayout.BY_KEYWORD, "cat", "1_x.jpg") == "cat/1_x.jpg"
