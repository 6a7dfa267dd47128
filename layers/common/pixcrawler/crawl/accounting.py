"""Ending a chunk and, with the last one, its job — in one transaction, with atomic counter updates.

Many workers end chunks of one job at the same time, so the job row, which every chunk's counters move, is
locked only for the transaction's LAST statement: the chunk's row is locked first (`SELECT ... FOR UPDATE`:
of two deliveries of one chunk the later waits, then finds it ended or moved on: exactly-once), its images are
inserted within the room the job had when last committed, and then one guarded `UPDATE crawl_jobs ... WHERE
downloaded_images + n <= max_images AND status <> 'cancelled'` moves every counter (`x = x + n` in SQL, so no
path can lose an increment) right before COMMIT. Commits of one job queue only for that statement and the
commit's WAL flush, not for each other's inserts (`benchmarks/commits.py`). When the guard fails, because
other chunks filled the job meanwhile or it was cancelled, the chunk settles under the job's lock: the rows
past the room it has then are deleted again, so `max_images` stays a hard cap.
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


@dataclass(frozen=True, slots=True)
class _Opened:
    """A chunk locked for its end: its counters so far (a deferred chunk ends over several deliveries) and the
    room its job had when last committed (read without the job's lock)."""

    room: int
    found: int
    downloaded: int
    failed: int
    refused: Mapping[str, int]


def _open(session: Session, job_id: int, chunk_id: int, deferrals: int | None = None) -> _Opened | None:
    """Lock the chunk; None when there is nothing to do: no such chunk, already ended, moved on (with
    `deferrals`, the chunk must still be at that version: a delivery that started before another one deferred
    the chunk worked on candidates that commit already settled, so it must not count them again), or its job
    cancelled (the chunk is then too)."""
    row = session.execute(
        select(
            CrawlChunk.status,
            CrawlChunk.deferrals,
            CrawlJob.status,
            CrawlJob.max_images - CrawlJob.downloaded_images,
            CrawlChunk.found,
            CrawlChunk.downloaded,
            CrawlChunk.failed,
            CrawlChunk.refused,
        )
        .join(CrawlJob, CrawlJob.id == CrawlChunk.crawl_job_id)
        .where(CrawlChunk.id == chunk_id, CrawlChunk.crawl_job_id == job_id)
        .with_for_update(of=CrawlChunk)
    ).one_or_none()
    if row is None or row[0].finished:
        return None
    if deferrals is not None and row[1] != deferrals:
        logger.info("chunk %s moved on to version %s; this delivery's work is dropped", chunk_id, row[1])
        return None
    opened = _Opened(max(0, row[3]), row[4], row[5], row[6], row[7])
    if row[2] is JobStatus.CANCELLED:
        _cancel_chunk(session, chunk_id, opened)
        return None
    return opened


def _cancel_chunk(session: Session, chunk_id: int, opened: _Opened) -> None:
    """A chunk of a cancelled job ends with the counts it had when opened, whatever this delivery did."""
    session.execute(
        update(CrawlChunk)
        .where(CrawlChunk.id == chunk_id)
        .values(
            status=JobStatus.CANCELLED,
            completed_at=now(),
            found=opened.found,
            downloaded=opened.downloaded,
            failed=opened.failed,
            refused=opened.refused,
        )
    )


def complete_chunk(
    session: Session, job_id: int, chunk_id: int, result: ChunkResult, deferrals: int | None = None
) -> ChunkEnd:
    """Insert the chunk's new images (up to the job's remaining room), count them and end the chunk; with
    deferred candidates in `result`, keep them on the chunk for its next delivery instead of ending it.

    Settling under the job's lock cannot miss its guard (the room and status it read are held), so its
    `_settle` always counts. That lock is `FOR NO KEY UPDATE`, what an UPDATE takes: `FOR UPDATE` would also
    wait for the key-share locks that every concurrent chunk's image inserts hold on the job row (their
    foreign key), while those chunks wait for it to move the counters: a deadlock."""
    opened = _open(session, job_id, chunk_id, deferrals)
    if opened is None:
        return ChunkEnd(inserted=set(), job_ended=False)
    unique = list({image.sha256: image for image in reversed(result.stored)}.values())[::-1]
    inserted = _insert_images(session, [{**image.row, "crawl_job_id": job_id} for image in unique])
    if len(inserted) <= opened.room:
        ended = _settle(session, job_id, chunk_id, opened, result, inserted, new=len(inserted))
        if ended is not None:
            return ChunkEnd({key for _, key in inserted}, ended, deferred=bool(result.deferred))
    locked = session.execute(
        select(CrawlJob.status, CrawlJob.max_images - CrawlJob.downloaded_images)
        .where(CrawlJob.id == job_id)
        .with_for_update(key_share=True)
    ).one()
    keep = 0 if locked[0] is JobStatus.CANCELLED else min(len(inserted), max(0, locked[1]))
    if surplus := [image_id for image_id, _ in inserted[keep:]]:
        session.execute(delete(Image).where(Image.id.in_(surplus)).execution_options(synchronize_session=False))
    if locked[0] is JobStatus.CANCELLED:
        _cancel_chunk(session, chunk_id, opened)
        return ChunkEnd(inserted=set(), job_ended=False)
    ended = _settle(session, job_id, chunk_id, opened, result, inserted[:keep], new=len(inserted))
    return ChunkEnd({key for _, key in inserted[:keep]}, bool(ended), deferred=bool(result.deferred))


def _settle(
    session: Session,
    job_id: int,
    chunk_id: int,
    opened: _Opened,
    result: ChunkResult,
    kept: Sequence[tuple[int, str]],
    new: int,
) -> bool | None:
    """Give the chunk its counts with `kept` of its `new` rows (the others are over the cap), absolute from
    what it had when opened so that settling again overwrites, and end it, or keep it pending with its
    deferred candidates; then count it on the job. Whether it ended the job, or None (nothing counted on the
    job) when the job lacks the room or was cancelled."""
    duplicates = len(result.stored) - new
    refused = {code.value: count for code, count in {**result.refused, Refusal.DUPLICATE: duplicates}.items() if count}
    deferred = {code.value: count for code, count in result.deferred_by.items() if count}
    failed = sum(result.refused.values())
    found, downloaded = opened.found + result.found, opened.downloaded + len(kept)
    counts = {
        "found": found,
        "downloaded": downloaded,
        "failed": opened.failed + failed,
        "refused": {code: opened.refused.get(code, 0) + refused.get(code, 0) for code in {*opened.refused, *refused}},
        "skipped": found - opened.failed - failed - downloaded - len(result.deferred),
    }
    if result.deferred:
        state = {"status": JobStatus.PENDING, "deferrals": CrawlChunk.deferrals + 1, "pending": list(result.deferred)}
        logger.info("chunk %s: %d stored, %d deferred %s", chunk_id, len(kept), len(result.deferred), deferred)
    else:
        state = {"status": JobStatus.COMPLETED, "completed_at": now(), "last_error": None, "pending": None}
        logger.info("chunk %s: %d found, %d stored, refused %s", chunk_id, found, downloaded, counts["refused"])
    session.execute(update(CrawlChunk).where(CrawlChunk.id == chunk_id).values(**counts, **state))
    return _count(
        session,
        job_id,
        downloaded=len(kept),
        found=result.found,
        completed=0 if result.deferred else 1,
        refused=refused,
        deferred=deferred,
    )


def _insert_images(session: Session, rows: list[dict[str, object]]) -> list[tuple[int, str]]:
    """Insert image rows, skipping a sha256 the job already has; returns the inserted rows' ids and keys in
    id order, which is the order of `rows`.

    The job's unique (crawl_job_id, sha256) index finds the ones it has, as the conflict arbiter: a query
    asking which of the chunk's sha256 the job has was planned, for a job grown since the table's last
    ANALYZE, as a scan of every image of the job (43 ms a chunk at 100,000 images, so a job's commits
    cost the square of its size; benchmarks/scale.py). The rows past the job's room are deleted again in
    the same transaction (`complete_chunk`), so the cap stays exact and is filled with images it lacks.

    The rows travel as ONE jsonb parameter unpacked by `jsonb_to_recordset`, not as a multi-row VALUES
    list: pg8000 scans a statement's text in Python to number its placeholders, and for a 100-row,
    16-column VALUES list that scan cost more CPU than anything else in the chunk's commit.
    """
    if not rows:
        return []
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
        .returning(Image.id, Image.storage_url)
    )
    return sorted((image_id, key) for image_id, key in session.connection().execute(statement, {"rows": rows}))


def fail_chunk(session: Session, job_id: int, chunk_id: int, error: str) -> bool:
    """Mark the chunk failed and count it; True when it was the job's last chunk."""
    opened = _open(session, job_id, chunk_id)
    if opened is None:
        return False
    session.execute(
        update(CrawlChunk)
        .where(CrawlChunk.id == chunk_id)
        .values(status=JobStatus.FAILED, completed_at=now(), last_error=error[:2000])
    )
    ended = _count(session, job_id, failed=1)
    if ended is None:
        _cancel_chunk(session, chunk_id, opened)
    return bool(ended)


def _count(
    session: Session,
    job_id: int,
    *,
    downloaded: int = 0,
    found: int = 0,
    completed: int = 0,
    failed: int = 0,
    refused: Mapping[str, int] | None = None,
    deferred: Mapping[str, int] | None = None,
) -> bool | None:
    """Move the job's counters, if it has room for `downloaded` more images and is not cancelled: the one
    statement of the chunk's transaction that locks the job row, so the caller commits right after it.
    Whether this ended the job (its last active chunk), or None when nothing moved."""
    ended = completed + failed
    total = func.greatest(CrawlJob.total_chunks, 1)
    room = [CrawlJob.downloaded_images + downloaded <= CrawlJob.max_images] if downloaded else []
    moved = session.execute(
        update(CrawlJob)
        .where(CrawlJob.id == job_id, CrawlJob.status != JobStatus.CANCELLED, *room)
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
        .returning(CrawlJob.status, CrawlJob.active_chunks)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if moved is None:
        return None
    if moved[1] == 0 and moved[0] is JobStatus.RUNNING:
        _finish_job(session, session.get_one(CrawlJob, job_id, populate_existing=True))
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
