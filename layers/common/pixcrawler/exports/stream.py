"""Streaming an export's images into its S3 objects (one, or a WebDataset's shards), through the format's `Output`.

The Lambda time limit shapes this: when the remaining time runs low the stream stops at an image boundary,
the output pushes out what it holds, the unfinished part goes to a tail object, and `state.hand_over` commits
the checkpoint (upload id, parts with ETags, position, output state) and queues the continuation. The next
invocation, in any container, continues the byte stream exactly, so a redelivered or continued message can
never yield a second object or a corrupt one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from functools import partial

from botocore.exceptions import ClientError

from pixcrawler import aws, links
from pixcrawler.exports import selection, state, webdataset
from pixcrawler.exports.checkpoint import Checkpoint, Clock, ExportError, Job
from pixcrawler.exports.formats import Listing, Output, open_output
from pixcrawler.exports.objects import Objects
from pixcrawler.models import Image
from pixcrawler.schemas.export import ExportFormat
from pixcrawler.settings import get_settings


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
        entries=lambda: _entries_again(job, checkpoint),
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
    images = selection.remaining(job, checkpoint, checkpoint.pass_index, checkpoint.position)
    with ExitStack() as stack:
        items = _with_bytes(images, stack) if output.reads_images else ((image, b"") for image in images)
        for image, data in items:
            output.write(image, selection.path(job, checkpoint, image), data)
            selection.written(job, checkpoint, image)
            done += 1
            if clock.low():
                _suspend(job, checkpoint, clock, objects, output, previous_tail)
                return False
            if checkpoint.exported % selection.PAGE_SIZE == 0:
                state.report_progress(job, checkpoint, clock)
    if done and clock.low():
        _suspend(job, checkpoint, clock, objects, output, previous_tail)
        return False
    output.close()
    objects.finish()
    checkpoint.phase = "assembling"
    state.save(job, checkpoint, clock)
    state.delete_tail(previous_tail)
    return True


def _suspend(
    job: Job, checkpoint: Checkpoint, clock: Clock, objects: Objects, output: Output, previous_tail: str | None
) -> None:
    output_state = output.suspend()
    checkpoint.sequence += 1
    objects.suspend(f"{checkpoint.key}.tail-{checkpoint.sequence}")
    checkpoint.output = output_state
    state.hand_over(job, checkpoint, clock, previous_tail)


def _with_bytes(images: Iterator[Image], stack: ExitStack) -> Iterator[tuple[Image, bytes]]:
    """Images with their stored bytes, fetched a few ahead in parallel (S3 latency, not bandwidth, bounds
    small objects) and yielded in order; memory holds at most twice the concurrency in images."""
    settings = get_settings()
    workers = settings.export_fetch_concurrency
    pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export-fetch"))
    stack.callback(pool.shutdown, cancel_futures=True)
    pending: deque[tuple[Image, Future[bytes]]] = deque()

    def fetch(image: Image) -> bytes:
        try:
            body = aws.s3().get_object(Bucket=settings.data_bucket, Key=image.storage_url)["Body"]
            return body.read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ExportError(f"Image {image.id} is missing from storage ({image.storage_url}).") from error
            raise

    for image in images:
        pending.append((image, pool.submit(fetch, image)))
        if len(pending) >= 2 * workers:
            head, future = pending.popleft()
            yield head, future.result()
    while pending:
        head, future = pending.popleft()
        yield head, future.result()


def _entries_again(job: Job, checkpoint: Checkpoint) -> Iterator[tuple[Image, str]]:
    """Every image of the export with its path, read again for the files that follow the images; raises if
    the rows no longer match what was streamed, rather than ship a manifest that disagrees with the images."""
    count = 0
    for image in selection.remaining(job, checkpoint, 0, 0):
        yield image, selection.path(job, checkpoint, image)
        count += 1
    if count != checkpoint.exported:
        raise ExportError(
            "The crawl job's images changed while the export ran (an image was deleted or re-validated); "
            "start the export again."
        )
