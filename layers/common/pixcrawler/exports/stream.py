"""Streaming an export's images into its S3 objects (one, or a WebDataset's shards), through the format's `Output`.

The Lambda time limit shapes this: when the remaining time runs low the stream stops at an image boundary,
the output pushes out what it holds, the unfinished part goes to a tail object, and `state.hand_over` commits
the checkpoint (upload id, parts with ETags, position, output state) and queues the continuation. The next
invocation, in any container, continues the byte stream exactly, so a redelivered or continued message can
never yield a second object or a corrupt one.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from functools import partial
from typing import TypeVar

from pixcrawler import links, transfers
from pixcrawler.exports import items, selection, state, webdataset
from pixcrawler.exports.checkpoint import Checkpoint, Clock, ExportError, Job, Written
from pixcrawler.exports.formats import Listing, Output, open_output
from pixcrawler.exports.objects import Objects
from pixcrawler.exports.transform import Transform, TransformError
from pixcrawler.models import Image
from pixcrawler.schemas.export import ExportFormat
from pixcrawler.settings import get_settings

T = TypeVar("T")
R = TypeVar("R")


def write(job: Job, checkpoint: Checkpoint, clock: Clock) -> bool:
    """Stream the remaining images; False when suspended for the next invocation."""
    previous_tail = checkpoint.upload.tail_key
    objects = Objects(checkpoint)
    output = _open(job, checkpoint, objects)
    try:
        return _stream(job, checkpoint, clock, objects, output, previous_tail)
    except BaseException:
        output.abandon()
        raise
    finally:
        objects.close()


def _open(job: Job, checkpoint: Checkpoint, objects: Objects) -> Output:
    listing = _listing(job, checkpoint)
    if job.format is ExportFormat.WEBDATASET:
        split = partial(selection.split_of, job, checkpoint)
        return webdataset.ShardsOutput(objects, checkpoint.output, listing, sorted(checkpoint.labels), split)
    assert objects.writer is not None
    return open_output(job.format, objects.writer, checkpoint.output, listing)


def _listing(job: Job, checkpoint: Checkpoint) -> Listing:
    """Documents link each image: the presigned link is signed for the export's link lifetime, but being a
    raw S3 URL it also ends when the signing role's credentials do (see README)."""
    lifetime = timedelta(hours=job.options.link_lifetime_hours)
    plan = selection.split_plan(job, checkpoint)
    return Listing(
        title=job.name,
        published=job.created_at,
        options=job.options,
        entries=lambda: items.entries(job, checkpoint),
        link=lambda key: links.presigned_get(key, lifetime),
        split_of=None if plan is None else lambda image: plan.split_of(image.sha256),
    )


def _stream(
    job: Job,
    checkpoint: Checkpoint,
    clock: Clock,
    objects: Objects,
    output: Output,
    previous_tail: str | None,
) -> bool:
    done = 0
    written: list[Written] = []
    images = selection.remaining(job, checkpoint, checkpoint.pass_index, checkpoint.position)
    with ExitStack() as stack:
        for image, data, facts in _outputs(job, images, output.reads_images, stack):
            if facts is None:
                path = selection.path(job, checkpoint, image)
            else:
                path = items.path(job, checkpoint, image, facts)
                written.append(facts)
            output.write(image, path, data, facts)
            selection.written(job, checkpoint, image)
            done += 1
            if clock.low():
                _suspend(job, checkpoint, clock, objects, output, previous_tail, written)
                return False
            if checkpoint.exported % selection.PAGE_SIZE == 0:
                state.report_progress(job, checkpoint, clock, written)
                written.clear()
    if done and clock.low():
        _suspend(job, checkpoint, clock, objects, output, previous_tail, written)
        return False
    state.report_progress(job, checkpoint, clock, written)  # the files after the images read every output's facts
    output.close()
    objects.finish()
    checkpoint.phase = "assembling"
    state.save(job, checkpoint, clock)
    state.delete_tail(previous_tail)
    return True


def _suspend(
    job: Job,
    checkpoint: Checkpoint,
    clock: Clock,
    objects: Objects,
    output: Output,
    previous_tail: str | None,
    written: list[Written],
) -> None:
    output_state = output.suspend()
    checkpoint.sequence += 1
    objects.suspend(f"{checkpoint.key}.tail-{checkpoint.sequence}")
    checkpoint.output = output_state
    state.hand_over(job, checkpoint, clock, previous_tail, written)


def _outputs(
    job: Job, images: Iterator[Image], reads_images: bool, stack: ExitStack
) -> Iterator[tuple[Image, bytes, Written | None]]:
    """Each image with the bytes its output writes and, when the export transforms them, their facts.

    Fetching is I/O-bound, so many fetches run at once; transforming is CPU-bound, so it runs in a thread pool
    sized to the cores (Pillow releases the GIL while it decodes, resizes and encodes; a Lambda has no
    /dev/shm for a process pool). Both stages keep at most twice their pool size in flight and yield in
    image order, so memory stays bounded and the archive's bytes do not depend on timing."""
    if not reads_images:
        yield from ((image, b"", None) for image in images)
        return
    settings = get_settings()
    reader = transfers.Reader(settings.data_bucket)
    fetched = _in_order(partial(_fetch, reader), images, settings.export_fetch_concurrency, "export-fetch", stack)
    transform = Transform.of(job.options, settings.validation_max_pixels)
    if transform is None:
        yield from ((image, data, None) for image, data in fetched)
        return

    def apply(pair: tuple[Image, bytes]) -> tuple[bytes, Written]:
        image, data = pair
        try:
            out = transform(data)
        except TransformError as error:
            raise ExportError(
                f"Image {image.id} ({image.storage_url}) could not be transformed: {error}. Export valid images "
                "only (validation refuses images that do not decode) or without resize_mode and encode_format."
            ) from error
        facts = Written(image.id, out.width, out.height, out.format, len(out.data), _sha256(out.data))
        return out.data, facts

    for (image, _), (data, facts) in _in_order(apply, fetched, os.cpu_count() or 1, "export-transform", stack):
        yield image, data, facts


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(reader: transfers.Reader, image: Image) -> bytes:
    try:
        return reader.get(image.storage_url)
    except transfers.ObjectMissing as error:
        raise ExportError(f"Image {image.id} is missing from storage ({image.storage_url}).") from error


def _in_order(
    work: Callable[[T], R], inputs: Iterable[T], workers: int, name: str, stack: ExitStack
) -> Iterator[tuple[T, R]]:
    """`work` over `inputs` in a pool of `workers` threads, at most twice that many in flight, yielded in input
    order (the pool is shut down, queued work cancelled, when `stack` closes)."""
    pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name))
    stack.callback(pool.shutdown, cancel_futures=True)
    pending: deque[tuple[T, Future[R]]] = deque()
    for item in inputs:
        pending.append((item, pool.submit(work, item)))
        if len(pending) >= 2 * workers:
            head, future = pending.popleft()
            yield head, future.result()
    while pending:
        head, future = pending.popleft()
        yield head, future.result()
