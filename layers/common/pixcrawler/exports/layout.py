"""Where each image goes inside an archive, under names that are safe on every file system.

Crawled file names and keywords come from the web: they may hold `../`, absolute paths, backslashes, control
characters, bidirectional overrides that make `\u202egpj.exe` display as `exe.jpg`, Windows device names or
just be empty. Names are reduced to one safe path segment, and uniqueness comes from the image id in the name
rather than from a table of names already used, so it holds across invocations without state and stays
unique on case-insensitive file systems too.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterable

from pixcrawler import object_keys
from pixcrawler.exports.manifest import FORMULA_START
from pixcrawler.schemas.export import ExportLayout

_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_SPACES = re.compile(r"\s+")
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul", "conin$", "conout$"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(10)]
)
MAX_SEGMENT_BYTES = 120
UNLABELED = "unlabeled"
MANIFEST_FILE = "manifest.csv"
ATTRIBUTION_FILE = "ATTRIBUTION.txt"
HF_METADATA = "metadata.jsonl"
SPLITS_FILE = "splits.json"
CROISSANT_FILE = "croissant.json"
ROOT_FILES = (MANIFEST_FILE, ATTRIBUTION_FILE, HF_METADATA, SPLITS_FILE, CROISSANT_FILE)
RECORD_FILES = (MANIFEST_FILE, HF_METADATA)
"""The files `croissant.json` may read its records from, preferred first (`metadata.jsonl` holds the same rows,
for an `hf_imagefolder` export made without `manifest.csv`)."""
_MEDIA_TYPES = {
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".jsonl": "application/jsonlines",
    ".json": "application/json",
}


def media_type(name: str) -> str:
    """The media type `croissant.json` gives a file the export adds (`train/metadata.jsonl` included)."""
    if name == CROISSANT_FILE:
        return "application/ld+json"
    return _MEDIA_TYPES[posixpath.splitext(name)[1]]


def _is_device(name: str) -> bool:
    """Windows opens a device for these names whatever follows the first dot, ignores spaces before that
    dot and reads superscript digits as digits (`CON .txt`, `COM¹`, `con.tar.gz`)."""
    return unicodedata.normalize("NFKC", name).split(".")[0].rstrip(" ").casefold() in _WINDOWS_DEVICES


def safe_segment(text: str | None, fallback: str) -> str:
    """One path segment: NFC-normalised, without invisible format characters (bidirectional controls,
    zero-width characters: category Cf), separators, control or reserved characters, leading dots or
    spreadsheet formula characters, or trailing dots/spaces; at most 120 UTF-8 bytes; `fallback` when nothing
    is left. A Windows device name gets a leading underscore (`_CON .txt`), as browsers do, so the label
    still reads as itself."""
    text = text or ""
    visible = text if text.isprintable() else "".join(char for char in text if unicodedata.category(char) != "Cf")
    cleaned = _SPACES.sub(" ", _FORBIDDEN.sub("_", unicodedata.normalize("NFC", visible))).lstrip(" ._" + FORMULA_START)
    if _is_device(cleaned):
        cleaned = f"_{cleaned}"
    return cleaned.encode()[:MAX_SEGMENT_BYTES].decode(errors="ignore").rstrip(" ._") or fallback


def label_folders(keywords: Iterable[str | None]) -> dict[str, str]:
    """A folder per keyword (the class label), distinct even where sanitising or letter case would merge two.

    A folder never takes the name of a file the export adds beside the folders (`manifest.csv`,
    `ATTRIBUTION.txt`, `metadata.jsonl`, `croissant.json`, in any letter case): such a keyword gets a suffix
    like a merged one (`manifest.csv-2`), so no archive holds a file and a folder of one name. Keys are the
    keywords ('' for none); sorted first so every invocation derives the same mapping.
    """
    folders: dict[str, str] = {}
    taken = {name.casefold() for name in ROOT_FILES}
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


def archive_path(layout: ExportLayout, folder: str, name: str, split: str | None = None) -> str:
    """The image's path in the archive: flat at the root, or in its label's folder (ImageFolder and the
    Hugging Face `imagefolder` layout both take the class from the folder name); with splits, all of that
    inside the split's folder (`train/cat/…`: an ImageFolder per split, and the split folders Hugging Face
    reads as splits)."""
    inner = name if layout is ExportLayout.FLAT else f"{folder}/{name}"
    return inner if split is None else f"{split}/{inner}"


def export_file_name(name: str, extension: str) -> str:
    """The export object's file name, which a browser keeps when saving the download: the job name's slug,
    never a Windows device name (`_con.tar.gz`)."""
    return f"{safe_segment(object_keys.slug(name), 'export')}.{extension}"
