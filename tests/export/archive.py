"""Reading produced exports back with the standard library, as a user would."""

from __future__ import annotations

import io
import tarfile
import zipfile


def members(data: bytes, fmt: str) -> dict[str, bytes]:
    """Every file in the archive by its path; fails on a corrupt archive."""
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            return {info.filename: archive.read(info) for info in archive.infolist()}
    mode = "r:gz" if fmt == "tar.gz" else "r:"
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode=mode) as archive:
        for info in archive.getmembers():
            extracted = archive.extractfile(info)
            assert extracted is not None
            files[info.name] = extracted.read()
    return files
