"""Per image, what an export wrote: the facts its manifest reports beside the original's.

A transformed export records each image's output (`export_items`) in the transactions that report its
progress and commit its checkpoint, so the files written after the images, possibly by a later invocation,
read exactly what was streamed. An export without a transform writes the stored bytes, whose facts are the
image row's. `entries` is the one reader: every image of the export in archive order, with its path and its
`Written` facts (the manifest, WebDataset's `<key>.json` and Croissant read them from here).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import NamedTuple

from sqlalchemy import and_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from pixcrawler.exports import selection, transform
from pixcrawler.exports.checkpoint import Checkpoint, ExportError, Job, Written
from pixcrawler.models import ExportItem, Image


class Entry(NamedTuple):
    image: Image
    path: str
    written: Written


def path(job: Job, checkpoint: Checkpoint, image: Image, written: Written) -> str:
    """The image's path in the archive: a transformed export names each file with its output's extension."""
    extension = transform.EXTENSIONS[written.format or ""] if job.options.transforms else None
    return selection.path(job, checkpoint, image, extension)


def record(session: Session, export_job_id: int, written: Sequence[Written]) -> None:
    """Store (or, for an image streamed again after a resume, overwrite) the items, in one statement."""
    if not written:
        return
    statement = insert(ExportItem).values([{"export_job_id": export_job_id, **asdict(item)} for item in written])
    columns = ("width", "height", "format", "file_size", "sha256")
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["export_job_id", "image_id"],
            set_={column: statement.excluded[column] for column in columns},
        )
    )


def entries(job: Job, checkpoint: Checkpoint) -> Iterator[Entry]:
    """Every image of the export, in archive order, with its path and output facts; raises if the rows no
    longer match what was streamed, rather than describe an archive that disagrees with its images."""
    joined = and_(ExportItem.export_job_id == job.id, ExportItem.image_id == Image.id)
    statement = selection.chosen(job, checkpoint).add_columns(ExportItem).outerjoin(ExportItem, joined)
    count = 0
    for image, item in selection.paged(statement, 0):
        if item is None and job.options.transforms:
            raise ExportError(f"Image {image.id} has no record of its transformed output; start the export again.")
        written = Written.of(item) if item is not None else Written.original(image)
        yield Entry(image, path(job, checkpoint, image, written), written)
        count += 1
    if count != checkpoint.exported:
        raise ExportError(
            "The crawl job's images changed while the export ran (an image was deleted or re-validated); "
            "start the export again."
        )
