"""Which images an export holds and where each goes in it.

The plan fixes the selection once (the crawl job, `only_valid`, images up to the newest id then), and every
later read (the images streamed, the extra files' second pass) goes through these functions, so both passes
list the very same rows in the same order and under the same paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from pixcrawler.db import session_scope
from pixcrawler.exports import layout, splits
from pixcrawler.exports.checkpoint import Checkpoint, Job
from pixcrawler.models import Image

PAGE_SIZE = 500
HASH_PAGE_SIZE = 10_000


def selection(crawl_job_id: int, only_valid: bool) -> Select[Image]:
    return select(Image).where(*_chosen(crawl_job_id, only_valid))


def _chosen(crawl_job_id: int, only_valid: bool) -> list[ColumnElement[bool]]:
    chosen = [Image.crawl_job_id == crawl_job_id]
    return [*chosen, Image.is_valid.is_(True)] if only_valid else chosen


def chosen(job: Job, checkpoint: Checkpoint) -> Select[Any]:
    """The export's images as the plan fixed them; callers may add columns and joins (the Image stays first)."""
    return selection(job.crawl_job_id, checkpoint.only_valid).where(Image.id <= checkpoint.last_image_id)


def paged(statement: Select[Any], after: int) -> Iterator[Any]:
    """The statement's rows (Image first) after image id `after`, in id order, a page per short transaction."""
    while True:
        with session_scope() as session:
            page = list(session.execute(statement.where(Image.id > after).order_by(Image.id).limit(PAGE_SIZE)))
        yield from page
        if len(page) < PAGE_SIZE:
            return
        after = page[-1][0].id


def images(job: Job, checkpoint: Checkpoint, after: int) -> Iterator[Image]:
    """The export's images after id `after`, in id order."""
    return (row[0] for row in paged(chosen(job, checkpoint), after))


def hashes(session: Session, crawl_job_id: int, only_valid: bool, last_image_id: int) -> Iterator[tuple[str, str]]:
    """(sha256, label) of every image the export holds, a page at a time: all the split plan reads."""
    chosen = [*_chosen(crawl_job_id, only_valid), Image.id <= last_image_id]
    statement = select(Image.id, Image.sha256, Image.keyword).where(*chosen).order_by(Image.id)
    after = 0
    while True:
        page = session.execute(statement.where(Image.id > after).limit(HASH_PAGE_SIZE)).all()
        yield from ((sha256, keyword or "") for _, sha256, keyword in page)
        if len(page) < HASH_PAGE_SIZE:
            return
        after = page[-1][0]


def split_names(job: Job) -> list[str]:
    """The export's splits in the order a WebDataset export streams them (code-point order, as `splits` lays
    them out), `train` alone when no splits are asked for."""
    return sorted(job.options.splits) if job.options.splits else [splits.DEFAULT_SPLIT]


def split_of(job: Job, checkpoint: Checkpoint, image: Image) -> str:
    """The split `image` belongs to, one of `split_names(job)`."""
    return split(job, checkpoint, image) or splits.DEFAULT_SPLIT


def remaining(job: Job, checkpoint: Checkpoint, pass_index: int, after: int) -> Iterator[Image]:
    """The images from pass `pass_index` after id `after` on: in id order, or split after split when the
    checkpoint streams by `passes` (each WebDataset split is its own shard set)."""
    if not checkpoint.passes:
        yield from images(job, checkpoint, after)
        return
    for index in range(pass_index, len(checkpoint.passes)):
        split = checkpoint.passes[index]
        start = after if index == pass_index else 0
        yield from (image for image in images(job, checkpoint, start) if split_of(job, checkpoint, image) == split)


def written(job: Job, checkpoint: Checkpoint, image: Image) -> None:
    """Move the checkpoint past `image`, the last one written."""
    checkpoint.position, checkpoint.exported = image.id, checkpoint.exported + 1
    if checkpoint.passes:
        checkpoint.pass_index = checkpoint.passes.index(split_of(job, checkpoint, image))


def path(job: Job, checkpoint: Checkpoint, image: Image, extension: str | None = None) -> str:
    """The image's path in the archive; `extension` (with its dot) replaces the stored one for a re-encoded
    image."""
    name = layout.file_name(image.id, image.filename, image.storage_url, extension)
    return layout.archive_path(
        job.options.layout, checkpoint.labels[image.keyword or ""], name, split(job, checkpoint, image)
    )


def split_plan(job: Job, checkpoint: Checkpoint) -> splits.SplitPlan | None:
    """The export's splits as planned (None without `splits`); the moves come from the checkpoint, so every
    invocation places every image where the first one counted it."""
    if job.options.splits is None:
        return None
    return splits.SplitPlan(job.options.splits, job.options.split_seed, checkpoint.split_moves)


def split(job: Job, checkpoint: Checkpoint, image: Image) -> str | None:
    """The image's split, or None for an export without `splits`."""
    plan = split_plan(job, checkpoint)
    return None if plan is None else plan.split_of(image.sha256)
