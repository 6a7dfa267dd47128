"""The WebDataset format: the images as samples in tar shards, one shard set per split, and `classes.txt`.

A sample is three tar members sharing a key: `<key>.<ext>` (the image), `<key>.json` (its manifest row:
licence, creator, source, hashes, split) and `<key>.cls` (its label's index, as text). WebDataset groups
members into samples by the key, which ends at the first dot of the member's name, so the key is the image id,
zero-padded: unique, safe anywhere and dot-free whatever the crawled file was called. `classes.txt` maps an
index to its label, one label per line in sorted order (line 0 is index 0).

Shards are named `<split>-000000.tar`, `<split>-000001.tar`, ... and a shard is closed before a sample that
would take it past `shard_max_samples` samples or `shard_max_bytes` bytes (its size as a finished tar, end
records included); a sample larger than the byte cap alone gets a shard of its own. Every decision depends only
on the images streamed before, so a resumed export cuts the same shards as an unbroken one.

`croissant.json` comes last, its own object: the dataset's creators, licences and labels, and every shard and
`classes.txt` with its size and sha256 (no record set: its rows are the samples' `.json` members, inside tars).
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable
from typing import Any, ClassVar

from pixcrawler.exports import croissant, layout, manifest
from pixcrawler.exports.checkpoint import Written
from pixcrawler.exports.formats import Listing, TarArchive
from pixcrawler.exports.objects import Objects
from pixcrawler.models import Image

CONTENT_TYPE = "application/x-tar"
CLASSES_FILE = "classes.txt"
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def sample_key(image_id: int) -> str:
    return f"{image_id:010d}"


def classes_text(classes: list[str]) -> bytes:
    """One label a line, each on one line whatever the keyword held; an empty keyword reads `unlabeled`."""
    return "".join(f"{manifest.one_line(label) or layout.UNLABELED}\n" for label in classes).encode()


def _media_type(name: str) -> str:
    return CONTENT_TYPE if name.endswith(".tar") else layout.media_type(name)


def _member_bytes(size: int) -> int:
    """What a member takes in a tar: its header block and its data padded to whole blocks."""
    return _BLOCK + -(-size // _BLOCK) * _BLOCK


def _finished_size(offset: int) -> int:
    """A tar's size once closed at `offset`: two zero blocks, padded to a whole record."""
    return -(-(offset + 2 * _BLOCK) // _RECORD) * _RECORD


class ShardsOutput:
    """The images as samples of the current split's current shard; `suspend` state names that shard and the
    offset its tar continues from."""

    reads_images: ClassVar[bool] = True

    def __init__(
        self,
        objects: Objects,
        state: dict[str, Any] | None,
        listing: Listing,
        classes: list[str],
        split: Callable[[Image], str],
    ) -> None:
        self._objects, self._listing, self._options = objects, listing, listing.options
        self._classes, self._split = classes, split
        self._index = {label: number for number, label in enumerate(classes)}
        self._shard: dict[str, Any] | None = (state or {}).get("shard")
        self._tar: TarArchive | None = None
        if self._shard is not None:
            assert objects.writer is not None
            self._tar = TarArchive(objects.writer, state, compress=False)

    def write(self, image: Image, path: str, data: bytes, written: Written | None = None) -> None:
        """`written`: the transformed file's facts; without it the stored image goes in as it is."""
        split = self._split(image)
        row = self._row(image, path, written or Written.original(image), split)
        key = sample_key(image.id)
        members = [
            (row["file_name"], data),
            (f"{key}.json", manifest.json_text(row).encode()),
            (f"{key}.cls", str(row["label_index"]).encode()),
        ]
        tar = self._shard_for(split, sum(_member_bytes(len(body)) for _, body in members))
        for name, body in members:
            tar.add(name, body, image.created_at)
        assert self._shard is not None
        self._shard["samples"] += 1

    def _shard_for(self, split: str, size: int) -> TarArchive:
        """The tar the next sample goes into: the current shard while the sample fits, else a new one."""
        shard, tar = self._shard, self._tar
        if shard is not None and tar is not None and shard["split"] == split:
            full = shard["samples"] >= self._options.shard_max_samples
            if not full and _finished_size(tar.offset + size) <= self._options.shard_max_bytes:
                return tar
        index = shard["index"] + 1 if shard is not None and shard["split"] == split else 0
        name = shard_name(split, index)
        if tar is not None:
            tar.close()
        if shard is None and self._objects.name == name and self._objects.writer is not None:
            writer = self._objects.writer  # the first shard, opened by the plan
        else:
            writer = self._objects.start(name, CONTENT_TYPE)
        self._shard = {"split": split, "index": index, "samples": 0}
        self._tar = TarArchive(writer, None, compress=False)
        return self._tar

    def suspend(self) -> dict[str, Any]:
        tar_state = self._tar.suspend() if self._tar is not None else {}
        return {**tar_state, "shard": self._shard}

    def close(self) -> None:
        """End the last shard, then store `classes.txt` and `croissant.json` after every shard."""
        if self._tar is not None:
            self._tar.close()
        self._objects.finish()
        self._objects.put(CLASSES_FILE, classes_text(self._classes), "text/plain; charset=utf-8")
        self._objects.put(layout.CROISSANT_FILE, self._croissant(), layout.media_type(layout.CROISSANT_FILE))

    def _croissant(self) -> bytes:
        """The description, from a second read of the rows (which also checks they did not change meanwhile)."""
        credits = croissant.Credits()
        for image, path, written in self._listing.entries():
            credits.add(self._row(image, path, written, self._split(image)))
        files = [
            croissant.DistributionFile(file.name, file.size, file.sha256 or "", _media_type(file.name))
            for file in self._objects.finished
        ]
        description = croissant.document(
            title=self._listing.title,
            published=self._listing.published,
            credits=credits,
            files=files,
            records=None,
            image_files=False,
        )
        return croissant.encode(description)

    def _row(self, image: Image, path: str, written: Written, split: str) -> dict[str, Any]:
        """The sample's manifest row (its `.json` member), `file_name` being the image member's name."""
        extension = posixpath.splitext(path)[1].lower() or ".bin"
        label_index = self._index[image.keyword or ""]
        name = f"{sample_key(image.id)}{extension}"
        return {**manifest.row(image, name, written, split), "label_index": label_index}

    def abandon(self) -> None:
        if self._tar is not None:
            self._tar.abandon()
