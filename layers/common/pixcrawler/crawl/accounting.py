"""Ending a chunk and, with the last one, its job — in one transaction, with atomic counter updates.

Every chunk ends here while holding the job row's lock (`SELECT ... FOR UPDATE`): chunks of one job finish
one at a time, so the `max_images` cap holds across concurrent workers, and a chunk that another delivery
already ended is left alone (exactly-once). Counters still move with `x = x + n` in SQL so no path can
lose an increment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from sqlalchemy import ColumnElement, Integer, bindparam, column, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from pixcrawler import lifecycle
from pixcrawler.crawl.refusals import Deferral, Refusal, describe
from pixcrawler.lifecycle import now
from pixcrawler.models import CrawlChunk, CrawlJob, Image, JobStatus

logger = Logger(child=True)
LEADING_REASONS = 3
"""A failed job's `error_message` names this many of its most frequent refusal reasons."""


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image already uploaded to its deterministic key, waiting for its row."""

    key: str
    sha256: str
    row: dict[str, object]


@dataclass(frozen=True, slots=True)
class ChunkEnd:
    """What a chunk's commit did: the keys it gave rows to, whether it was the job's last chunk, and whether
    it was deferred (its message must come back for the candidates it kept)."""

    inserted: set[str]
    job_ended: bool
    deferred: bool = False


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """`found` new candidates (0 when a deferred chunk resumes: they were counted), of which `stored` were
    uploaded, `refused` (counted by reason) were not and `deferred` wait for a later delivery; the rest were
    not needed (the job was full)."""

    found: int
    stored: Sequence[StoredImage]
    refused: Mapping[Refusal, int]
    deferred: Sequence[Mapping[str, Any]] = ()
    """The candidates put off for later, as `crawl_chunks.pending` stores them."""
    deferred_by: Mapping[Deferral, int] = field(default_factory=dict)
    resume_in: float = 0.0
    """Seconds until the deferred candidates' hosts may have room: the delay of the chunk's next delivery."""


def _lock(
    session: Session, job_id: int, chunk_id: int, deferrals: int | None = None
) -> tuple[CrawlJob, CrawlChunk] | None:
    """Lock the job, then the chunk (always in that order, so two enders never deadlock). With `deferrals`,
    the chunk must still be at that version: a delivery that started before another one deferred the chunk
    worked on candidates that commit already settled, so it must not count them again."""
    job = session.execute(select(CrawlJob).where(CrawlJob.id == job_id).with_for_update()).scalar_one_or_none()
    chunk = session.execute(
        select(CrawlChunk).where(CrawlChunk.id == chunk_id, CrawlChunk.crawl_job_id == job_id).with_for_update()
    ).scalar_one_or_none()
    if job is None or chunk is None or chunk.status.finished:
        return None
    if deferrals is not None and chunk.deferrals != deferrals:
        logger.info("chunk %s moved on to version %s; this delivery's work is dropped", chunk_id, chunk.deferrals)
        return None
    if job.status is JobStatus.CANCELLED:
        chunk.status, chunk.completed_at = JobStatus.CANCELLED, now()
        return None
    return job, chunk


def complete_chunk(
    session: Session, job_id: int, chunk_id: int, result: ChunkResult, deferrals: int | None = None
) -> ChunkEnd:
    """Insert the chunk's new images (up to the job's remaining room), count them and end the chunk; with
    deferred candidates in `result`, keep them on the chunk for its next delivery instead of ending it."""
    locked = _lock(session, job_id, chunk_id, deferrals)
    if locked is None:
        return ChunkEnd(inserted=set(), job_ended=False)
    job, chunk = locked
    unique = list({image.sha256: image for image in reversed(result.stored)}.values())[::-1]
    new = _insert_images(session, [{**image.row, "crawl_job_id": job_id} for image in unique])
    fresh = [image for image in unique if image.row["storage_url"] in new]
    over = fresh[job.remaining_capacity :]
    _delete_images(session, job_id, [image.sha256 for image in over])
    inserted = new - {image.row["storage_url"] for image in over}
    duplicates = len(result.stored) - len(fresh)
    refused = {code.value: count for code, count in {**result.refused, Refusal.DUPLICATE: duplicates}.items() if count}
    deferred = {code.value: count for code, count in result.deferred_by.items() if count}
    failed = sum(result.refused.values())
    chunk.found, chunk.downloaded, chunk.failed = (
        chunk.found + result.found,
        chunk.downloaded + len(inserted),
        chunk.failed + failed,
    )
    chunk.refused = {code: chunk.refused.get(code, 0) + refused.get(code, 0) for code in {*chunk.refused, *refused}}
    chunk.skipped = chunk.found - chunk.failed - chunk.downloaded - len(result.deferred)
    if result.deferred:
        chunk.status, chunk.deferrals, chunk.pending = JobStatus.PENDING, chunk.deferrals + 1, list(result.deferred)
        logger.info("chunk %s: %d stored, %d deferred %s", chunk_id, len(inserted), len(result.deferred), deferred)
        _count(session, job, downloaded=len(inserted), found=result.found, refused=refused, deferred=deferred)
        return ChunkEnd(inserted, job_ended=False, deferred=True)
    chunk.status, chunk.completed_at, chunk.last_error, chunk.pending = JobStatus.COMPLETED, now(), None, None
    logger.info("chunk %s: %d found, %d stored, refused %s", chunk_id, chunk.found, chunk.downloaded, chunk.refused)
    job_ended = _count(
        session, job, downloaded=len(inserted), found=result.found, completed=1, refused=refused, deferred=deferred
    )
    return ChunkEnd(inserted, job_ended)


def _insert_images(session: Session, rows: list[dict[str, object]]) -> set[str]:
    """Insert image rows, skipping a sha256 the job already has; returns the inserted rows' keys.

    The job's unique (crawl_job_id, sha256) index finds the ones it has, as the conflict arbiter: a query
    asking which of the chunk's sha256 the job has was planned, for a job grown since the table's last
    ANALYZE, as a scan of every image of the job (43 ms a chunk at 100,000 images, so a job's commits
    cost the square of its size; benchmarks/scale.py). The rows past the job's room are deleted again in
    the same transaction (`_delete_images`), so the cap stays exact and is filled with images it lacks.

    The rows travel as ONE jsonb parameter unpacked by `jsonb_to_recordset`, not as a multi-row VALUES
    list: pg8000 scans a statement's text in Python to number its placeholders, and for a 100-row,
    16-column VALUES list that scan cost more CPU than anything else in the chunk's commit.
    """
    if not rows:
        return set()
    columns = [Image.__table__.c[name] for name in rows[0]]
    unpacked = (
        func.jsonb_to_recordset(bindparam("rows", type_=JSONB))
        .table_valued(*(column(c.name, c.type) for c in columns))
        .render_derived(with_types=True)
    )
    statement = (
        insert(Image)
        .from_select(columns, select(*unpacked.c))
        .on_conflict_do_nothing(index_elements=[Image.crawl_job_id, Image.sha256])
        .returning(Image.storage_url)
    )
    return set(session.connection().execute(statement, {"rows": rows}).scalars())


def _delete_images(session: Session, job_id: int, shas: list[str]) -> None:
    """Take back rows this transaction inserted past the job's cap (only a chunk that fills the job has any)."""
    if shas:
        session.execute(delete(Image).where(Image.crawl_job_id == job_id, Image.sha256.in_(shas)))


def fail_chunk(session: Session, job_id: int, chunk_id: int, error: str) -> bool:
    """Mark the chunk failed and count it; True when it was the job's last chunk."""
    locked = _lock(session, job_id, chunk_id)
    if locked is None:
        return False
    job, chunk = locked
    chunk.status, chunk.completed_at, chunk.last_error = JobStatus.FAILED, now(), error[:2000]
    return _count(session, job, failed=1)


def _count(
    session: Session,
    job: CrawlJob,
    *,
    downloaded: int = 0,
    found: int = 0,
    completed: int = 0,
    failed: int = 0,
    refused: Mapping[str, int] | None = None,
    deferred: Mapping[str, int] | None = None,
) -> bool:
    """Move the job's counters; end the job (returning True) when this was its last active chunk."""
    ended = completed + failed
    total = func.greatest(CrawlJob.total_chunks, 1)
    session.execute(
        update(CrawlJob)
        .where(CrawlJob.id == job.id)
        .values(
            downloaded_images=CrawlJob.downloaded_images + downloaded,
            total_images=CrawlJob.total_images + found,
            completed_chunks=CrawlJob.completed_chunks + completed,
            failed_chunks=CrawlJob.failed_chunks + failed,
            active_chunks=func.greatest(CrawlJob.active_chunks - ended, 0),
            progress=func.least(100, (CrawlJob.completed_chunks + CrawlJob.failed_chunks + ended) * 100 // total),
            refused=_counts_plus(CrawlJob.refused, refused or {}),
            deferred=_counts_plus(CrawlJob.deferred, deferred or {}),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(job)
    if job.active_chunks == 0 and job.status is JobStatus.RUNNING:
        _finish_job(session, job)
        return True
    return False


def _counts_plus(counts: InstrumentedAttribute[dict[str, int]], delta: Mapping[str, int]) -> ColumnElement[Any]:
    """`counts || {code: counts[code] + n, ...}`: each code moves by `x = x + n` in SQL, like the job's
    integer counters, so no path can lose an increment."""
    if not delta:
        return counts.expression
    moved = [
        value
        for code, count in delta.items()
        for value in (code, func.coalesce(counts[code].astext.cast(Integer), 0) + count)
    ]
    return counts.op("||")(func.jsonb_build_object(*moved))


def _finish_job(session: Session, job: CrawlJob) -> None:
    """The last chunk has ended: the job completes, or fails with a reason a user can act on."""
    counts: dict[str, Any] = {
        "downloaded_images": job.downloaded_images,
        "completed_chunks": job.completed_chunks,
        "failed_chunks": job.failed_chunks,
    }
    if job.completed_chunks == 0:
        last_error = session.scalar(
            select(CrawlChunk.last_error)
            .where(CrawlChunk.crawl_job_id == job.id, CrawlChunk.status == JobStatus.FAILED)
            .order_by(CrawlChunk.completed_at.desc())
            .limit(1)
        )
        error = f"all {job.failed_chunks} chunk(s) failed; last error: {last_error}"
    elif job.downloaded_images == 0:
        candidates = f"{job.total_images} candidate{'' if job.total_images == 1 else 's'}"
        reasons = describe(job.refused, leading=LEADING_REASONS)
        error = f"no image could be downloaded from {candidates}" + (f": {reasons}" if reasons else "")
    else:
        lifecycle.complete(session, job, **counts)
        logger.info("crawl job %s completed: %d image(s), refused %s", job.id, job.downloaded_images, job.refused)
        return
    lifecycle.fail(session, job, error, **counts)
    logger.warning("crawl job %s failed: %s", job.id, error)
