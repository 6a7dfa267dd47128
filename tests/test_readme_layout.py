"""The README's map of the package names every module, so a new module cannot hide from the next reader."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "layers" / "common" / "pixcrawler"


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme[readme.index("## Layout") : readme.index("## Data model")]


def _named(section: str) -> set[str]:
    """Every `name` in the map's first column and every `name` listed inside a package's row."""
    names: set[str] = set()
    for row in re.findall(r"^\| (.+?) \| (.+?) \|$", section, re.MULTILINE):
        for cell in row:
            names.update(name.rstrip("/") for name in re.findall(r"`([a-z_/]+)`", cell))
    return names


def test_every_module_of_the_package_is_on_the_map() -> None:
    named = _named(_layout_section())
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if path.name == "__init__.py" or "__pycache__" in relative.parts:
            continue
        top = relative.parts[0].removesuffix(".py")
        nested = top in {"crawl", "validation", "exports"}
        if top not in named or (nested and path.stem not in named):
            missing.append(str(relative))
    assert missing == [], f"add these modules to the README's Layout map: {missing}"


def test_the_map_names_no_module_that_is_gone() -> None:
    section = _layout_section()
    table = section[section.index("| module |") :]
    first_column = {name.rstrip("/") for name in re.findall(r"^\| `([a-z_/]+)`", table, re.MULTILINE)}
    gone = [name for name in first_column if not (PACKAGE / name).exists() and not (PACKAGE / f"{name}.py").exists()]
    assert gone == []
