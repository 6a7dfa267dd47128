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
        ("CON", "fallback"),
        ("lpt1.txt", "fallback"),
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


def test_label_folders_are_distinct_even_ignoring_case() -> None:
    folders = layout.label_folders(["Cat", "cat", "CAT", None, "", "a/b", "a_b"])
    assert folders == {"": "unlabeled", "CAT": "CAT", "Cat": "Cat-2", "a/b": "a_b", "a_b": "a_b-2", "cat": "cat-3"}
    assert layout.archive_path(ExportLayout.FLAT, "cat", "1_x.jpg") == "1_x.jpg"
    assert layout.archive_path(ExportLayout.BY_KEYWORD, "cat", "1_x.jpg") == "cat/1_x.jpg"
