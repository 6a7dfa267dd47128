"""An export job's state in the database: the plan, the lease, the checkpoint and the status writes.

At-least-once delivery means two invocations may hold the same message. An invocation works under a lease
kept in `export_jobs.checkpoint` (taken with `SELECT ... FOR UPDATE`), so a duplicate arriving while another
invocation works on the job is dropped, and an invocation that lost its lease never writes state or completes
the upload: every write after the claim goes through `_locked`, which checks the lease first.

The job's status writes (started, completed, failed) are the small `_mark_*` functions at the end, one each, and
go through `pixcrawler.lifecycle` like every job's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from sqlalchemy import BigInteger, func, select
from sqlalchemy.orm import Session

from pixcrawler import aws, lifecycle, links, object_keys, observability, queues
from pixcrawler.db import session_scope
from pixcrawler.exports import items, layout, multipart, objects, selection, sidecar, splits, webdataset
from pixcrawler.exports.checkpoint import Cancelled, Checkpoint, Clock, Job, LeaseLost, StoredFile, Written
from pixcrawler.exports.formats import CONTENT_TYPES
from pixcrawler.exports.multipart import MiB
from pixcrawler.messages import ExportMessage
from pixcrawler.models import CrawlJob, ExportJob, JobStatus, ValidationJob
from pixcrawler.schemas.export import DOCUMENT_FORMATS, ExportFormat, ExportOptions
from pixcrawler.settings import get_settings

logger = Logger(child=True)


def claim(export_job_id: int, clock: Clock) -> tuple[Job, Checkpoint] | None:
    """Take the job's lease, planning the export on first delivery; None when there is nothing to do."""
    with session_scope() as session:
        row = session.get(ExportJob, export_job_id, with_for_update=True)
        if row is None or row.status.finished:
            if row is not None and row.status is JobStatus.CANCELLED and row.checkpoint:
                discard(Checkpoint.model_validate(row.checkpoint))
                row.checkpoint = None
            return None
        job = Job(
            row.id,
            row.crawl_job_id,
            row.user_id,
            row.name,
            ExportFormat(row.format),
            _options(row.export_options),
            row.created_at,
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
    chosen = selection.selection(job.crawl_job_id, only_valid).subquery()
    stored_bytes = func.coalesce(func.sum(chosen.c.file_size), 0).cast(BigInteger)  # SUM(bigint) is a numeric
    total, last_id, stored = session.execute(select(func.count(), func.max(chosen.c.id), stored_bytes)).one()
    if not total:
        which = "valid images" if only_valid else "images"
        _mark_failed(session, row, f"Crawl job {job.crawl_job_id} has no {which} to export.")
        return None
    keywords = session.scalars(select(chosen.c.keyword).distinct())
    project_id = session.scalar(select(CrawlJob.project_id).where(CrawlJob.id == job.crawl_job_id))
    assert project_id is not None
    passes = selection.split_names(job) if job.format is ExportFormat.WEBDATASET else None
    first = webdataset.shard_name(passes[0], 0) if passes else layout.export_file_name(job.name, job.format.value)
    key = object_keys.export_key(project_id, job.id, first)
    settings = get_settings()
    largest_object = stored if passes is None else min(stored, job.options.shard_max_bytes)
    base = multipart.base_part_size(settings.export_part_size_mb * MiB, largest_object)
    upload = multipart.start(aws.s3(), settings.data_bucket, key, base, CONTENT_TYPES[job.format])
    _mark_started(session, row, total)
    return Checkpoint(
        key=key,
        only_valid=only_valid,
        last_image_id=last_id,
        total=total,
        labels=layout.label_folders(keywords),
        upload=upload,
        split_moves=_plan_splits(session, row, job, only_valid, last_id),
        passes=passes,
    )


def _plan_splits(session: Session, row: ExportJob, job: Job, only_valid: bool, last_id: int) -> dict[str, str]:
    """Count the images per split and label for the job's response; the stratification moves go into the
    checkpoint, so every invocation reads them rather than the images again."""
    if job.options.splits is None:
        return {}
    plan = splits.plan(
        lambda: selection.hashes(session, job.crawl_job_id, only_valid, last_id),
        job.options.splits,
        job.options.split_seed,
    )
    row.split_counts = plan.counts
    return plan.moved


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


def save(job: Job, checkpoint: Checkpoint, clock: Clock, written: Sequence[Written] = ()) -> None:
    """Commit the checkpoint, and in the same transaction the output facts of the images streamed since the
    last commit: a resumed export sees exactly what was streamed before it."""
    with session_scope() as session:
        row = _locked(session, job, clock)
        row.checkpoint = checkpoint.model_dump(mode="json")
        _set_progress(row, checkpoint)
        items.record(session, job.id, written)


def _set_progress(row: ExportJob, checkpoint: Checkpoint) -> None:
    row.exported_images = checkpoint.exported
    row.progress = min(99, checkpoint.exported * 100 // max(checkpoint.total, 1))


def report_progress(job: Job, checkpoint: Checkpoint, clock: Clock, written: Sequence[Written] = ()) -> None:
    """Cheap counter update between checkpoints, with the output facts streamed since the last one (so memory
    holds at most a page of them); notices a cancellation or a lost lease."""
    with session_scope() as session:
        row = _locked(session, job, clock)
        _set_progress(row, checkpoint)
        items.record(session, job.id, written)


def hand_over(
    job: Job,
    checkpoint: Checkpoint,
    clock: Clock,
    previous_tail: str | None,
    written: Sequence[Written] = (),
) -> None:
    """Commit the checkpoint with the lease released and queue the message that continues the export."""
    checkpoint.lease_owner = checkpoint.lease_until = None
    save(job, checkpoint, clock, written)
    delete_tail(previous_tail)
    queues.send(get_settings().export_queue_url, ExportMessage(export_job_id=job.id))
    logger.info("export %s suspended after %s/%s images", job.id, checkpoint.exported, checkpoint.total)


def complete(job: Job, checkpoint: Checkpoint, clock: Clock) -> None:
    """Join every object's parts (repeatable, so a lost commit after it completes the job on redelivery),
    describe a document export in its `croissant.json` object (repeatable too), then record it."""
    files = objects.assemble(checkpoint)
    if job.format in DOCUMENT_FORMATS:
        files = [*files, sidecar.write_croissant(job, checkpoint, files[0])]
    with session_scope() as session:
        row = _locked(session, job, clock)
        _mark_completed(session, row, job, checkpoint, files)
        started = row.started_at or datetime.now(UTC)
    ran = datetime.now(UTC) - started
    observability.export_completed(checkpoint.exported, sum(file.size for file in files), ran.total_seconds())


def fail(job: Job, checkpoint: Checkpoint, clock: Clock, message: str) -> None:
    """Abort the upload (S3 bills stored parts until then), then record the failure."""
    discard(checkpoint)
    with session_scope() as session:
        _mark_failed(session, _locked(session, job, clock), message)


def fail_unclaimed(export_job_id: int, message: str) -> None:
    """The message's last allowed delivery failed before the export could record why (its claim or plan
    raised): fail the job readably and drop its upload, whoever held the lease."""
    with session_scope() as session:
        row = session.get(ExportJob, export_job_id, with_for_update=True)
        if row is None or row.status.finished:
            return
        if row.checkpoint:
            discard(Checkpoint.model_validate(row.checkpoint))
        _mark_failed(session, row, message)


def discard(checkpoint: Checkpoint) -> None:
    """Drop everything the export wrote: every unfinished upload and every object under its prefix."""
    objects.sweep(checkpoint)


def delete_tail(key: str | None) -> None:
    if key:
        with suppress(ClientError):
            aws.s3().delete_object(Bucket=get_settings().data_bucket, Key=key)


def _mark_started(session: Session, row: ExportJob, total: int) -> None:
    lifecycle.begin(session, row)
    row.total_images, row.exported_images, row.progress = total, 0, 0


def _mark_completed(
    session: Session, row: ExportJob, job: Job, checkpoint: Checkpoint, files: list[StoredFile]
) -> None:
    listed = [file.model_dump(include={"name", "key", "size", "sha256"}) for file in files]
    link, row.files = links.issue_all(job.id, listed, timedelta(hours=job.options.link_lifetime_hours))
    size = sum(file.size for file in files)
    lifecycle.complete(session, row, format=job.format.value, images=checkpoint.exported, bytes=size)
    row.storage_key, row.file_size = files[0].key, files[0].size
    row.total_images = row.exported_images = checkpoint.exported
    row.download_url, row.expires_at = link.url, link.expires_at
    row.checkpoint = None


def _mark_failed(session: Session, row: ExportJob, message: str) -> None:
    lifecycle.fail(session, row, message)
    row.checkpoint = None
