"""Which images an export holds and where each goes in it.

The plan fixes the selection once (the crawl job, `only_valid`, images up to the newest id then), and every
later read (the images streamed, the extra files' second pass) goes through these functions, so both passes
list the very same rows in the same order and under the same paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, select

from pixcrawler.db import session_scope
from pixcrawler.exports import layout
from pixcrawler.exports.checkpoint import Checkpoint, Job
from pixcrawler.models import Image

PAGE_SIZE = 500


def selection(crawl_job_id: int, only_valid: bool) -> Select[Image]:
    statement = select(Image).where(Image.crawl_job_id == crawl_job_id)
    return statement.where(Image.is_valid.is_(True)) if only_valid else statement


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


def path(job: Job, checkpoint: Checkpoint, image: Image, extension: str | None = None) -> str:
    """The image's path in the archive; `extension` (with its dot) replaces the stored one for a re-encoded
    image."""
    name = layout.file_name(image.id, image.filename, image.storage_url, extension)
    return layout.archive_path(job.options.layout, checkpoint.labels[image.keyword or ""], name)
