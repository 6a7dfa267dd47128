"""Files that other processes read while this one may be writing them."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomically(path: Path, text: str, mode: int = 0o666) -> None:
    """Write `text` to `path` so that a reader finds the old file or the whole new one, never a part of it: a
    temporary file beside it, renamed over it (`serve`'s state file was once read empty by a tool polling for
    it, between `write_text`'s truncation and its write). `mode` is the new file's, less the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    partial.touch(mode=mode)
    partial.write_text(text)
    os.replace(partial, path)
