"""Reading produced exports back as a user would: with the standard library, GNU tar and unzip."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path


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


def _run(*command: str) -> None:
    """Run an extraction tool; its complaint, if any, becomes the assertion message."""
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command[0]} exited {done.returncode}: {done.stderr or done.stdout}"


def _gnu_tar(archive: Path, target: Path) -> None:
    _run("tar", "-xf", str(archive), "-C", str(target))


def _unzip(archive: Path, target: Path) -> None:
    if shutil.which("unzip") is None:
        _zipfile(archive, target)
    else:
        _run("unzip", "-q", str(archive), "-d", str(target))


def _zipfile(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(target)


def _tarfile(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as opened:
        opened.extractall(target, filter="data")


EXTRACTORS: dict[str, dict[str, Callable[[Path, Path], None]]] = {
    "zip": {"unzip": _unzip, "zipfile": _zipfile},
    "tar": {"gnu-tar": _gnu_tar, "tarfile": _tarfile},
    "tar.gz": {"gnu-tar": _gnu_tar, "tarfile": _tarfile},
}


def extract_everywhere(data: bytes, fmt: str, workdir: Path) -> dict[str, dict[str, bytes]]:
    """The archive extracted by every tool that reads its format, each into its own folder under `workdir`;
    per tool, every extracted file by its relative POSIX path.

    Fails when a tool fails, when anything lands outside its folder, or when the tree holds anything but
    plain files and folders.
    """
    archive = workdir / f"export.{fmt}"
    archive.write_bytes(data)
    trees: dict[str, dict[str, bytes]] = {}
    for tool, extract in EXTRACTORS[fmt].items():
        target = workdir / tool
        target.mkdir()
        extract(archive, target)
        files: dict[str, bytes] = {}
        for path in target.rglob("*"):
            assert not path.is_symlink() and (path.is_file() or path.is_dir()), path
            assert path.resolve().is_relative_to(target.resolve()), path
            if path.is_file():
                files[path.relative_to(target).as_posix()] = path.read_bytes()
        trees[tool] = files
    assert {path.name for path in workdir.iterdir()} == {archive.name, *trees}, "something landed outside"
    return trees
