"""Where each image goes inside an archive, under names that are safe on every file system.

Crawled file names come from the web: they may hold `../`, absolute paths, backslashes, control characters,
Windows device names or just be empty. Names are reduced to one safe path segment, and uniqueness comes from
the image id in the name rather than from a table of names already used, so it holds across invocations
without state and stays unique on case-insensitive file systems too.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterable

from pixcrawler.schemas.export import ExportLayout

_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_SPACES = re.compile(r"\s+")
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{n}" for n in range(1, 10)] + [f"lpt{n}" for n in range(1, 10)]
)
MAX_SEGMENT_BYTES = 120
UNLABELED = "unlabeled"
HF_METADATA = "metadata.jsonl"


def safe_segment(text: str | None, fallback: str) -> str:
    """One path segment: no separators, control or reserved characters, leading dots, device names or
    trailing dots/spaces; NFC-normalised and at most 120 UTF-8 bytes; `fallback` when nothing is left."""
    cleaned = _SPACES.sub(" ", _FORBIDDEN.sub("_", unicodedata.normalize("NFC", text or ""))).strip(" ._")
    encoded = cleaned.encode()[:MAX_SEGMENT_BYTES]
    cleaned = encoded.decode(errors="ignore").rstrip(" ._")
    if not cleaned or cleaned.split(".")[0].lower() in _WINDOWS_DEVICES:
        return fallback
    return cleaned


def label_folders(keywords: Iterable[str | None]) -> dict[str, str]:
    """A folder per keyword (the class label), distinct even where sanitising or letter case would merge two.

    Keys are the keywords ('' for none); sorted first so every invocation derives the same mapping.
    """
    folders: dict[str, str] = {}
    taken: set[str] = set()
    for keyword in sorted({keyword or "" for keyword in keywords}):
        base = safe_segment(keyword, UNLABELED)
        folder, suffix = base, 2
        while folder.casefold() in taken:
            folder, suffix = f"{base}-{suffix}", suffix + 1
        taken.add(folder.casefold())
        folders[keyword] = folder
    return folders


def file_name(image_id: int, original_name: str | None, storage_key: str) -> str:
    """`<id>_<original stem>.<stored extension>`: the extension is the stored object's, so a name that lies
    about its type (`x.exe`) cannot mislabel the file."""
    extension = posixpath.splitext(storage_key)[1].lower() or ".bin"
    stem = posixpath.splitext(posixpath.basename((original_name or "").replace("\\", "/")))[0]
    return f"{image_id}_{safe_segment(stem, 'image')}{extension}"


def archive_path(layout: ExportLayout, folder: str, name: str) -> str:
    """The image's path in the archive: flat at the root, or in its label's folder (ImageFolder and the
    Hugging Face `imagefolder` layout both take the class from the folder name)."""
    return name if layout is ExportLayout.FLAT else f"{folder}/{name}"
