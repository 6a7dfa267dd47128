"""The one output interface: every format, archive or document, written through the same calls.

The lifecycle tests drive whole exports and compare the images; this compares the complete object (end
records, zip central directory, extra files, document framing) of a run suspended mid-stream, its state sent
through JSON as the checkpoint stores it, against an unbroken run. WebDataset writes several objects, so
tests/export/test_webdataset.py compares whole exports instead."""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest

from pixcrawler.exports import formats, multipart, zipdirectory
from pixcrawler.exports.checkpoint import Written
from pixcrawler.exports.formats import CONTENT_TYPES, Listing, open_output
from pixcrawler.exports.items import Entry
from pixcrawler.exports.multipart import MiB, MultipartWriter, UploadState
from pixcrawler.models import Image
from pixcrawler.schemas.export import ExportFormat, ExportLayout, ExportOptions

pytestmark = pytest.mark.usefixtures("aws_over_http")  # parts are stored through the CRT, over HTTP

CREATED = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)


def image(number: int) -> Image:
    return Image(
        id=number,
        original_url=f"https://images.test/{number}.jpg",
        filename=f"{number}.jpg",
        storage_url=f"images/{number}.jpg",
        width=640,
        height=480,
        file_size=2 * MiB,
        format="jpeg",
        sha256=f"{number:064x}",
        keyword="cat",
        provider="test",
        source_url=f"https://pages.test/{number}",
        title=f'Cat "{number}", =1+1',
        license="CC-BY-4.0",
        license_url="https://creativecommons.org/licenses/by/4.0/",
        creator="Ann",
        created_at=CREATED,
    )


IMAGES = [image(number) for number in range(1, 6)]
DATA = {item.id: random.Random(item.id).randbytes(2 * MiB + item.id) for item in IMAGES}


def export(aws: dict[str, Any], fmt: ExportFormat, key: str, stops: list[int], splits: bool = False) -> bytes:
    """Write IMAGES in one invocation per slice between `stops`, suspending between them, and join the parts;
    with `splits`, odd ids in `train`, even ones in `test`."""
    s3, bucket = aws["s3"], aws["bucket"]
    fractions = {"train": 0.5, "test": 0.5} if splits else None
    options = ExportOptions(layout=ExportLayout.HF_IMAGEFOLDER, include_manifest=True, splits=fractions)
    listing = Listing(
        title="Cats",
        published=datetime(2026, 5, 6, 7, 8, 10, tzinfo=UTC),
        options=options,
        entries=lambda: (Entry(item, path(item, splits), Written.original(item)) for item in IMAGES),
        link=lambda storage_key: f"https://links.test/{storage_key}",
        split_of=(lambda item: ("test", "train")[item.id % 2]) if splits else None,
    )
    upload = multipart.start(s3, bucket, key, 5 * MiB, CONTENT_TYPES[fmt])
    state: dict[str, Any] | None = None
    bounds = [0, *stops, len(IMAGES)]
    for number, (start, end) in enumerate(pairwise(bounds)):
        writer = MultipartWriter(s3, bucket, key, upload)
        output = open_output(fmt, writer, state, listing)
        for item in IMAGES[start:end]:
            output.write(item, path(item, splits), DATA[item.id] if output.reads_images else b"")
        if end == len(IMAGES):
            output.close()
            upload = writer.finish()
        else:
            state = json.loads(json.dumps(output.suspend()))
            upload = UploadState.model_validate_json(writer.suspend(f"{key}.tail-{number}").model_dump_json())
        writer.close()
    multipart.assemble(s3, bucket, key, upload)
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def path(item: Image, splits: bool) -> str:
    return f"{('test', 'train')[item.id % 2]}/cat/{item.id}.jpg" if splits else f"cat/{item.id}.jpg"


@pytest.mark.parametrize("splits", [False, True], ids=["whole", "splits"])
@pytest.mark.parametrize("fmt", [fmt for fmt in ExportFormat if fmt is not ExportFormat.WEBDATASET])
def test_every_output_continues_after_a_checkpoint_into_the_bytes_of_an_unbroken_run(
    fmt: ExportFormat, splits: bool, aws: dict[str, Any]
) -> None:
    whole = export(aws, fmt, "exports/whole", [], splits)
    pieces = export(aws, fmt, "exports/pieces", [1, 3], splits)

    if fmt is ExportFormat.TAR_GZ:  # one gzip member per invocation; the tar inside is the same stream
        whole, pieces = gzip.decompress(whole), gzip.decompress(pieces)
    assert pieces == whole
    assert (len(whole) > 10 * MiB) is (fmt in formats.ARCHIVES)


class Stream(io.RawIOBase):
    """A write-only, non-seekable stream like the multipart writer, for zipfile's reference archives."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return len(self.data)

    def write(self, data: Any) -> int:
        self.data += data
        return len(data)


ZIP_ENTRIES = [(f"cat/{number}.jpg", random.Random(number).randbytes(MiB + number)) for number in range(5)]
ZIP_ENTRIES += [("chats/été.jpg", b"\xff\xd8 not ascii"), ("big.jpg", random.Random(9).randbytes(3 * MiB))]
ZIP_EXTRA = ("manifest.csv", b"path\ncat/0.jpg\n")


def zip_info(path: str, size: int, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, CREATED.timetuple()[:6])
    info.external_attr, info.compress_type, info.file_size = 0o644 << 16, compress_type, size
    return info


def zipfile_reference(entries: list[tuple[str, bytes]]) -> bytes:
    """ZIP_ENTRIES then ZIP_EXTRA (deflated) as zipfile writes them in one go, central directory included."""
    stream = Stream()
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as plain:
        for name, data in entries:
            plain.writestr(zip_info(name, len(data), zipfile.ZIP_STORED), data)
        name, data = ZIP_EXTRA
        with plain.open(zip_info(name, len(data), zipfile.ZIP_DEFLATED), "w") as target:
            target.write(data)
    return bytes(stream.data)


def resumed_zip(aws: dict[str, Any], key: str, upload: UploadState, state: dict[str, Any], done: int) -> bytes:
    """The rest of ZIP_ENTRIES (from `done`) and ZIP_EXTRA written by a ZipArchive resuming `state`, joined."""
    s3, bucket = aws["s3"], aws["bucket"]
    writer = MultipartWriter(s3, bucket, key, upload)
    archive = formats.ZipArchive(writer, json.loads(json.dumps(state)))
    for name, data in ZIP_ENTRIES[done:]:
        archive.add(name, data, CREATED)
    archive.add_stream(ZIP_EXTRA[0], io.BytesIO(ZIP_EXTRA[1]), len(ZIP_EXTRA[1]), CREATED)
    archive.close()
    multipart.assemble(s3, bucket, key, writer.finish())
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def test_a_zip_suspended_after_every_entry_keeps_a_constant_state_and_writes_the_bytes_of_zipfile(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 3 * MiB)  # sizes and offsets past it take ZIP64 fields, as past 2 GiB
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 4)  # and ZIP64 end records, as past 65,535 entries
    s3, bucket, key = aws["s3"], aws["bucket"], "exports/zip64.zip"
    upload = multipart.start(s3, bucket, key, 5 * MiB, CONTENT_TYPES[ExportFormat.ZIP])
    state: dict[str, Any] | None = None
    sizes = []
    for number, (name, data) in enumerate(ZIP_ENTRIES[:-1]):
        writer = MultipartWriter(s3, bucket, key, upload)
        archive = formats.ZipArchive(writer, state)
        archive.add(name, data, CREATED)
        state = json.loads(json.dumps(archive.suspend()))
        upload = UploadState.model_validate_json(writer.suspend(f"{key}.tail-{number}").model_dump_json())
        writer.close()
        sizes.append(len(json.dumps(state)))
    assert state is not None

    produced = resumed_zip(aws, key, upload, state, len(ZIP_ENTRIES) - 1)

    assert len(set(sizes)) == 1, sizes  # the state does not grow with the entries written
    assert produced == zipfile_reference(ZIP_ENTRIES)
    with zipfile.ZipFile(io.BytesIO(produced)) as opened:
        assert opened.testzip() is None
        assert [info.filename for info in opened.infolist()] == [name for name, _ in [*ZIP_ENTRIES, ZIP_EXTRA]]
        assert opened.infolist()[-2].header_offset > 3 * MiB and opened.infolist()[-2].file_size == 3 * MiB


def test_a_zip_checkpoint_that_lists_its_entries_as_before_resumes_into_the_bytes_of_zipfile(
    aws: dict[str, Any],
) -> None:
    """An export suspended by the previous release (its checkpoint listing every entry's fields) finishes."""
    s3, bucket, key = aws["s3"], aws["bucket"], "exports/legacy.zip"
    upload = multipart.start(s3, bucket, key, 5 * MiB, CONTENT_TYPES[ExportFormat.ZIP])
    writer = MultipartWriter(s3, bucket, key, upload)
    plain = zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    for name, data in ZIP_ENTRIES[:2]:
        plain.writestr(zip_info(name, len(data), zipfile.ZIP_STORED), data)
    fields = zipdirectory._LEGACY_FIELDS
    legacy = {"entries": [[getattr(info, field) for field in fields] for info in plain.filelist]}
    plain.fp = None
    upload = UploadState.model_validate_json(writer.suspend(f"{key}.tail-0").model_dump_json())
    writer.close()

    assert resumed_zip(aws, key, upload, legacy, 2) == zipfile_reference(ZIP_ENTRIES)
