"""The life of an export job: claim it, stream its images into one S3 object, finish or hand over.

At-least-once delivery and the Lambda time limit shape everything here:
- An invocation works under a lease kept in `export_jobs.checkpoint` (taken with `SELECT ... FOR UPDATE`),
  so a duplicate message arriving while another invocation works on the job is dropped, and an invocation
  that lost its lease never writes state or completes the upload.
- When the remaining time runs low it suspends at an image boundary: the archive writer flushes, the
  unfinished part goes to a tail object, the checkpoint (upload id, parts with ETags, position, writer
  state) is committed, and an ExportMessage is queued to continue. The next invocation, in any container,
  continues the byte stream exactly, so a redelivered or continued message can never yield a second object
  or a corrupt one.
- Before joining the parts it records the phase "assembling"; joining is repeatable, so a lost commit after
  it completes the job on redelivery.
- Any error fails the job with a readable message and aborts the multipart upload.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import IO, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from pixcrawler import aws, links, object_keys, observability, queues
from pixcrawler.db import session_scope
from pixcrawler.exports import layout, manifest, multipart
from pixcrawler.exports.formats import ARCHIVES, CONTENT_TYPES, ROW_WRITERS, Archive, Document, Utf8Sink, open_archive
from pixcrawler.exports.multipart import MiB, MultipartWriter, UploadState
from pixcrawler.messages import ExportMessage
from pixcrawler.models import CrawlJob, ExportJob, Image, JobStatus, ValidationJob
from pixcrawler.schemas.export import ExportFormat, ExportLayout, ExportOptions
from pixcrawler.services import activity
from pixcrawler.settings import get_settings

logger = Logger(child=True)

PAGE_SIZE = 500
SPOOL_IN_MEMORY = MiB
LEASE_MARGIN = timedelta(seconds=60)


class Outcome(StrEnum):
    COMPLETED = "completed"
    CONTINUED = "continued"
    FAILED = "failed"
    SKIPPED = "skipped"


class ExportError(Exception):
    """A failure whose message is fit to show the user as the job's `error_message`."""


class LeaseLost(Exception):
    """Another invocation owns the job now: stop without touching it."""


class Cancelled(LeaseLost):
    """The job was cancelled while it ran: drop the upload, leave the row as the canceller set it."""


class Checkpoint(BaseModel):
    """Everything an invocation needs to continue the export where the previous one stopped."""

    key: str
    only_valid: bool
    last_image_id: int
    total: int
    labels: dict[str, str]
    upload: UploadState
    position: int = 0
    exported: int = 0
    output: dict[str, Any] | None = None
    phase: Literal["images", "assembling"] = "images"
    sequence: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """The export's fixed facts, read once under the lease."""

    id: int
    crawl_job_id: int
    user_id: Any
    name: str
    format: ExportFormat
    options: ExportOptions


@dataclass(frozen=True, slots=True)
class Clock:
    """The invocation's time budget: `owner` names the lease, `remaining_ms` is the Lambda context's."""

    owner: str
    remaining_ms: Callable[[], int]
    reserve_ms: int

    def low(self) -> bool:
        return self.remaining_ms() < self.reserve_ms

    def lease_until(self) -> datetime:
        return datetime.now(UTC) + timedelta(milliseconds=self.remaining_ms()) + LEASE_MARGIN


def clock_for(context: Any) -> Clock:
    return Clock(
        owner=context.aws_request_id,
        remaining_ms=context.get_remaining_time_in_millis,
        reserve_ms=get_settings().export_reserve_seconds * 1000,
    )


def run(export_job_id: int, clock: Clock) -> Outcome:
    """Advance one export job as far as this invocation's time allows."""
    claimed = _claim(export_job_id, clock)
    if claimed is None:
        return Outcome.SKIPPED
    job, checkpoint = claimed
    try:
        if checkpoint.phase == "images" and not _write(job, checkpoint, clock):
            return Outcome.CONTINUED
        _complete(job, checkpoint, clock)
        return Outcome.COMPLETED
    except Cancelled:
        logger.info("export %s was cancelled; discarding its upload", job.id)
        _discard(checkpoint)
        return Outcome.SKIPPED
    except LeaseLost:
        logger.info("export %s is no longer ours; stopping", job.id)
        return Outcome.SKIPPED
    except Exception as error:
        logger.exception("export %s failed", job.id)
        _fail(job, checkpoint, clock, _describe(error))
        return Outcome.FAILED


# --- claiming and planning -------------------------------------------------------------------------------


def _claim(export_job_id: int, clock: Clock) -> tuple[Job, Checkpoint] | None:
    with session_scope() as session:
        row = session.get(ExportJob, export_job_id, with_for_update=True)
        if row is None or row.status.finished:
            if row is not None and row.status is JobStatus.CANCELLED and row.checkpoint:
                _discard(Checkpoint.model_validate(row.checkpoint))
                row.checkpoint = None
            return None
        job = Job(
            row.id, row.crawl_job_id, row.user_id, row.name, ExportFormat(row.format), _options(row.export_options)
        )
        if row.checkpoint is None:
            checkpoint = _plan(session, row, job)
            if checkpoint is None:
                return None
        else:
            checkpoint = Checkpoint.model_validate(row.checkpoint)
            held = checkpoint.lease_owner not in (None, clock.owner)
            if held and checkpoint.lease_until and checkpoint.lease_until > datetime.now(UTC):
                logger.info("export %s is being written by %s; dropping duplicate", job.id, checkpoint.lease_owner)
                return None
        checkpoint.lease_owner, checkpoint.lease_until = clock.owner, clock.lease_until()
        row.checkpoint = checkpoint.model_dump(mode="json")
        return job, checkpoint


def fail(export_job_id: int, message: str) -> None:
    """The message's last allowed delivery failed before the export could record why (its claim or plan
    raised): fail it readably and drop its upload."""
    with session_scope() as session:
        row = session.get(ExportJob, export_job_id, with_for_update=True)
        if row is None or row.status.finished:
            return
        if row.checkpoint:
            _discard(Checkpoint.model_validate(row.checkpoint))
        _mark_failed(session, row, message)


def _options(stored: dict[str, Any]) -> ExportOptions:
    """The stored options; keys the API may keep beside them (such as the requesting user) are ignored."""
    return ExportOptions.model_validate({key: stored[key] for key in ExportOptions.model_fields if key in stored})


def _plan(session: Session, row: ExportJob, job: Job) -> Checkpoint | None:
    """Fix what the export contains (images up to the newest id now) and start its upload.

    A defaulted `only_valid` is stored resolved, so the job shows the user which images it was made from."""
    only_valid = job.options.only_valid
    if only_valid is None:
        only_valid = (
            session.scalar(
                select(func.count())
                .select_from(ValidationJob)
                .where(ValidationJob.crawl_job_id == job.crawl_job_id, ValidationJob.status == JobStatus.COMPLETED)
            )
            != 0
        )
        row.export_options = {**row.export_options, "only_valid": only_valid}
    chosen = _selection(job.crawl_job_id, only_valid).subquery()
    total, last_id = session.execute(select(func.count(), func.max(chosen.c.id))).one()
    if not total:
        which = "valid images" if only_valid else "images"
        _mark_failed(session, row, f"Crawl job {job.crawl_job_id} has no {which} to export.")
        return None
    keywords = session.scalars(select(chosen.c.keyword).distinct())
    project_id = session.scalar(select(CrawlJob.project_id).where(CrawlJob.id == job.crawl_job_id))
    assert project_id is not None
    key = object_keys.export_key(project_id, job.id, layout.export_file_name(job.name, job.format.value))
    settings = get_settings()
    upload = multipart.start(
        aws.s3(), settings.data_bucket, key, settings.export_part_size_mb * MiB, CONTENT_TYPES[job.format]
    )
    row.status, row.started_at, row.total_images, row.exported_images, row.progress = (
        JobStatus.RUNNING,
        datetime.now(UTC),
        total,
        0,
        0,
    )
    return Checkpoint(
        key=key,
        only_valid=only_valid,
        last_image_id=last_id,
        total=total,
        labels=layout.label_folders(keywords),
        upload=upload,
    )


def _selection(crawl_job_id: int, only_valid: bool) -> Select[Image]:
    statement = select(Image).where(Image.crawl_job_id == crawl_job_id)
    return statement.where(Image.is_valid.is_(True)) if only_valid else statement


def _images(job: Job, checkpoint: Checkpoint, after: int) -> Iterator[Image]:
    """The export's images after id `after`, in id order, a page per short transaction."""
    statement = _selection(job.crawl_job_id, checkpoint.only_valid).where(Image.id <= checkpoint.last_image_id)
    while True:
        with session_scope() as session:
            page = list(session.scalars(statement.where(Image.id > after).order_by(Image.id).limit(PAGE_SIZE)))
        yield from page
        if len(page) < PAGE_SIZE:
            return
        after = page[-1].id


def _path(job: Job, checkpoint: Checkpoint, image: Image) -> str:
    name = layout.file_name(image.id, image.filename, image.storage_url)
    return layout.archive_path(job.options.layout, checkpoint.labels[image.keyword or ""], name)


# --- writing -----------------------------------------------------------------------------------------------


def _write(job: Job, checkpoint: Checkpoint, clock: Clock) -> bool:
    """Stream the remaining images; False when suspended for the next invocation."""
    previous_tail = checkpoint.upload.tail_key
    writer = MultipartWriter(aws.s3(), get_settings().data_bucket, checkpoint.key, checkpoint.upload)
    output: Archive | Document
    if job.format in ARCHIVES:
        output = open_archive(job.format, writer, checkpoint.output)
    else:
        output = Document(job.format, writer, checkpoint.output)
        if checkpoint.output is None:
            output.begin()
    try:
        return _stream(job, checkpoint, clock, writer, output, previous_tail)
    except BaseException:
        output.abandon()
        raise
    finally:
        writer.close()


def _stream(
    job: Job,
    checkpoint: Checkpoint,
    clock: Clock,
    writer: MultipartWriter,
    output: Archive | Document,
    previous_tail: str | None,
) -> bool:
    done = 0
    images = _images(job, checkpoint, checkpoint.position)
    with ExitStack() as stack:
        items = ((image, b"") for image in images) if isinstance(output, Document) else _with_bytes(images, stack)
        for image, data in items:
            if isinstance(output, Document):
                output.add(_link_row(job, checkpoint, image))
            else:
                output.add(_path(job, checkpoint, image), data, image.created_at)
            checkpoint.position, checkpoint.exported, done = image.id, checkpoint.exported + 1, done + 1
            if clock.low():
                _suspend(job, checkpoint, clock, writer, output.suspend(), previous_tail)
                return False
            if checkpoint.exported % PAGE_SIZE == 0:
                _report_progress(job, checkpoint, clock)
    if done and clock.low():
        _suspend(job, checkpoint, clock, writer, output.suspend(), previous_tail)
        return False
    if not isinstance(output, Document):
        _write_extras(job, checkpoint, output)
    output.close()
    checkpoint.upload = writer.finish()
    checkpoint.phase = "assembling"
    _save(job, checkpoint, clock)
    _delete_tail(previous_tail)
    return True


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


def _link_row(job: Job, checkpoint: Checkpoint, image: Image) -> dict[str, Any]:
    """A manifest row for csv/json/jsonl exports. Its presigned link is signed for the export's link
    lifetime, but being a raw S3 URL it also ends when the signing role's credentials do (see README)."""
    url = links.presigned_get(image.storage_url, timedelta(hours=job.options.link_lifetime_hours))
    row = manifest.row(image, _path(job, checkpoint, image))
    return {"image_id": image.id, **row, "storage_key": image.storage_url, "url": url}


def _write_extras(job: Job, checkpoint: Checkpoint, archive: Archive) -> None:
    """The manifest, Hugging Face metadata and attribution file, written after the images from a second
    read of the same rows (spooled to memory, then /tmp past 1 MiB each: tar needs each size up front)."""
    now = datetime.now(UTC)
    with ExitStack() as stack:
        files: dict[str, IO[bytes]] = {}

        def spool(name: str) -> IO[bytes]:
            files[name] = stack.enter_context(tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY))
            return files[name]

        attribution = Utf8Sink(spool(layout.ATTRIBUTION_FILE))
        attribution.write(manifest.attribution_header(job.name))
        tables = []
        if job.options.include_manifest:
            tables.append(ROW_WRITERS[ExportFormat.CSV](Utf8Sink(spool(layout.MANIFEST_FILE)), manifest.COLUMNS, 0))
        if job.options.layout is ExportLayout.HF_IMAGEFOLDER:
            tables.append(ROW_WRITERS[ExportFormat.JSONL](Utf8Sink(spool(layout.HF_METADATA)), manifest.COLUMNS, 0))
        for table in tables:
            table.begin()
        count = 0
        for image in _images(job, checkpoint, 0):
            path = _path(job, checkpoint, image)
            attribution.write(manifest.attribution_entry(image, path))
            values = manifest.row(image, path)
            for table in tables:
                table.write(values)
            count += 1
        if count != checkpoint.exported:
            raise ExportError(
                "The crawl job's images changed while the export ran (an image was deleted or re-validated); "
                "start the export again."
            )
        for table in tables:
            table.end()
        for name, stream in files.items():
            size = stream.tell()
            stream.seek(0)
            archive.add_stream(name, stream, size, now)


# --- state changes -----------------------------------------------------------------------------------------


def _locked(session: Session, job: Job, clock: Clock) -> ExportJob:
    """The job row, locked, provided this invocation still holds its lease."""
    row = session.get(ExportJob, job.id, with_for_update=True)
    if row is None or row.status is JobStatus.CANCELLED:
        raise Cancelled
    if row.status is not JobStatus.RUNNING or row.checkpoint is None:
        raise LeaseLost
    if row.checkpoint.get("lease_owner") != clock.owner:
        raise LeaseLost
    return row


def _save(job: Job, checkpoint: Checkpoint, clock: Clock) -> None:
    with session_scope() as session:
        row = _locked(session, job, clock)
        row.checkpoint = checkpoint.model_dump(mode="json")
        _set_progress(row, checkpoint)


def _set_progress(row: ExportJob, checkpoint: Checkpoint) -> None:
    row.exported_images = checkpoint.exported
    row.progress = min(99, checkpoint.exported * 100 // max(checkpoint.total, 1))


def _report_progress(job: Job, checkpoint: Checkpoint, clock: Clock) -> None:
    """Cheap counter update between checkpoints; notices a cancellation or a lost lease."""
    with session_scope() as session:
        row = _locked(session, job, clock)
        _set_progress(row, checkpoint)


def _suspend(
    job: Job,
    checkpoint: Checkpoint,
    clock: Clock,
    writer: MultipartWriter,
    output_state: dict[str, Any],
    previous_tail: str | None,
) -> None:
    checkpoint.sequence += 1
    checkpoint.upload = writer.suspend(f"{checkpoint.key}.tail-{checkpoint.sequence}")
    checkpoint.output = output_state
    checkpoint.lease_owner = checkpoint.lease_until = None
    _save(job, checkpoint, clock)
    _delete_tail(previous_tail)
    queues.send(get_settings().export_queue_url, ExportMessage(export_job_id=job.id))
    logger.info("export %s suspended after %s/%s images", job.id, checkpoint.exported, checkpoint.total)


def _complete(job: Job, checkpoint: Checkpoint, clock: Clock) -> None:
    bucket = get_settings().data_bucket
    multipart.assemble(aws.s3(), bucket, checkpoint.key, checkpoint.upload)
    with session_scope() as session:
        row = _locked(session, job, clock)
        link = links.issue(job.id, timedelta(hours=job.options.link_lifetime_hours))
        row.status, row.progress, row.completed_at = JobStatus.COMPLETED, 100, datetime.now(UTC)
        row.storage_key, row.file_size = checkpoint.key, checkpoint.upload.size
        row.total_images = row.exported_images = checkpoint.exported
        row.download_url, row.expires_at = link.url, link.expires_at
        row.checkpoint, row.error_message = None, None
        activity.record(
            session,
            job.user_id,
            "export.completed",
            "export_job",
            job.id,
            format=job.format.value,
            images=checkpoint.exported,
            bytes=checkpoint.upload.size,
        )
        ran = row.completed_at - (row.started_at or row.completed_at)
    observability.export_completed(checkpoint.exported, checkpoint.upload.size, ran.total_seconds())


def _fail(job: Job, checkpoint: Checkpoint, clock: Clock, message: str) -> None:
    """Abort the upload (S3 bills stored parts until then), then record the failure."""
    _discard(checkpoint)
    with session_scope() as session:
        row = _locked(session, job, clock)
        _mark_failed(session, row, message)


def _mark_failed(session: Session, row: ExportJob, message: str) -> None:
    row.status, row.error_message, row.completed_at, row.checkpoint = (
        JobStatus.FAILED,
        message,
        datetime.now(UTC),
        None,
    )
    activity.record(session, row.user_id, "export.failed", "export_job", row.id, error=message)
    observability.job_failed("export")


def _discard(checkpoint: Checkpoint) -> None:
    with suppress(ClientError):
        multipart.abort(aws.s3(), get_settings().data_bucket, checkpoint.key, checkpoint.upload.upload_id)
    _delete_tail(checkpoint.upload.tail_key)


def _delete_tail(key: str | None) -> None:
    if key:
        with suppress(ClientError):
            aws.s3().delete_object(Bucket=get_settings().data_bucket, Key=key)


def _describe(error: Exception) -> str:
    if isinstance(error, ExportError):
        return str(error)
    return f"The export failed unexpectedly ({type(error).__name__}: {error})."[:1000]
