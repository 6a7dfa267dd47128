"""The one output interface: every format, archive or document, written through the same calls.

The lifecycle tests drive whole exports and compare the images; this compares the complete object (end
records, zip central directory, extra files, document framing) of a run suspended mid-stream, its state sent
through JSON as the checkpoint stores it, against an unbroken run. WebDataset writes several objects, so
tests/export/test_webdataset.py compares whole exports instead."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest

from pixcrawler.exports import formats, multipart
from pixcrawler.exports.checkpoint import Written
from pixcrawler.exports.formats import CONTENT_TYPES, Listing, open_output
from pixcrawler.exports.items import Entry
from pixcrawler.exports.multipart import MiB, MultipartWriter, UploadState
from pixcrawler.models import Image
from pixcrawler.schemas.export import ExportFormat, ExportLayout, ExportOptions

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
