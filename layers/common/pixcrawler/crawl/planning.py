"""Dispatch: split a crawl job into chunks and queue them; re-queue failed or stuck chunks.

Chunk rows are written with `ON CONFLICT DO NOTHING` on (job, chunk_index), so a redelivered dispatch
creates no second set; chunk messages go out after the rows commit, and a dispatch that died before
sending is completed by its redelivery (the job has fewer `queued_chunks` than chunks). A duplicate chunk
message is harmless: the chunk's own row decides whether work remains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from aws_lambda_powertools import Logger
from sqlalchemy import Integer, func, literal, select, type_coerce, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.orm import Session

from pixcrawler import lifecycle, queues, sqs_records
from pixcrawler.db import session_scope
from pixcrawler.lifecycle import now
from pixcrawler.messages import ChunkMessage, DispatchMessage
from pixcrawler.models import CrawlChunk, CrawlJob, JobStatus
from pixcrawler.providers import PROVIDERS
from pixcrawler.settings import Settings, get_settings

logger = Logger(child=True)
HEADROOM = 1.25
"""Plan this much more than `max_images` from search providers: some candidates always fail to download."""
CHUNK_ROWS_PER_INSERT = 1_000
"""Search-page chunk rows per INSERT: a statement carries at most 65,535 parameters (PostgreSQL's protocol). A
URL list's slices pass none of their own: `_insert_url_slices` is one statement whatever their number."""


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    keyword: str
    provider: str
    page: int = 1


def plan(job: CrawlJob, settings: Settings) -> list[ChunkPlan]:
    """Keyword x provider pages for the search providers, sized to `max_images`. A URL list's slices are not
    planned here: `_insert_url_slices` cuts them inside PostgreSQL."""
    plans: list[ChunkPlan] = []
    searches = [name for name in job.providers if name != "urls" and name in PROVIDERS]
    if searches:
        page_size = settings.crawl_page_size
        wanted = math.ceil(job.max_images * HEADROOM / (len(job.keywords) * len(searches)))
        for keyword in job.keywords:
            for name in searches:
                pages = min(math.ceil(wanted / page_size), math.ceil(PROVIDERS[name].max_results / page_size))
                plans.extend(ChunkPlan(keyword, name, page) for page in range(1, pages + 1))
    return plans


def dispatch(message: DispatchMessage, receive_count: int = 1) -> list[str]:
    """Plan and queue a job (or, with `retry`, the chunks a retry reset); returns the chunk message ids sent.
    A failure on the message's last allowed delivery fails the job readably (`fail`)."""
    with sqs_records.fail_on_last_delivery("dispatch", receive_count, partial(fail, message.crawl_job_id)):
        return _dispatch(message)
    return []


def _dispatch(message: DispatchMessage) -> list[str]:
    with session_scope() as session:
        job = session.get(CrawlJob, message.crawl_job_id, with_for_update=True)
        if job is None or job.status is JobStatus.CANCELLED:
            logger.info("crawl job %s is gone or cancelled: nothing to dispatch", message.crawl_job_id)
            return []
        chunk_ids = _retried(session, job) if message.retry else _plan_once(session, job)
    return _send(message.crawl_job_id, chunk_ids)


def fail(crawl_job_id: int, reason: str) -> None:
    """A job whose dispatch keeps failing (its plan or its chunk messages) ends failed rather than waiting forever."""
    with session_scope() as session:
        job = session.get(CrawlJob, crawl_job_id, with_for_update=True)
        if job is not None:
            lifecycle.fail(session, job, reason)


def _plan_once(session: Session, job: CrawlJob) -> list[int]:
    if job.status is JobStatus.PENDING:
        settings = get_settings()
        plans = plan(job, settings)
        rows = [
            {
                "crawl_job_id": job.id,
                "chunk_index": index,
                "keyword": item.keyword,
                "provider": item.provider,
                "page": item.page,
            }
            for index, item in enumerate(plans)
        ]
        for start in range(0, len(rows), CHUNK_ROWS_PER_INSERT):
            session.execute(
                insert(CrawlChunk)
                .values(rows[start : start + CHUNK_ROWS_PER_INSERT])
                .on_conflict_do_nothing(index_elements=[CrawlChunk.crawl_job_id, CrawlChunk.chunk_index])
            )
        total = len(plans)
        if "urls" in job.providers:
            total += _insert_url_slices(session, job, first_index=total, size=settings.crawl_urls_per_chunk)
        if not total:
            lifecycle.fail(session, job, "nothing to crawl")
            return []
        lifecycle.begin(session, job)
        job.total_chunks = job.active_chunks = total
    elif job.status is not JobStatus.RUNNING or job.queued_chunks >= job.total_chunks:
        return []
    return list(
        session.scalars(
            select(CrawlChunk.id)
            .where(CrawlChunk.crawl_job_id == job.id, CrawlChunk.status == JobStatus.PENDING)
            .order_by(CrawlChunk.chunk_index)
        )
    )


def _insert_url_slices(session: Session, job: CrawlJob, first_index: int, size: int) -> int:
    """One chunk row per `size` URLs of the job's list, in order, numbered from `first_index`; how many.

    PostgreSQL cuts the list where it is stored (`jsonb_array_elements ... WITH ORDINALITY`, grouped by
    position), so the list never enters this process. Loading it and slicing it here held 34 MiB more at the
    dispatch's peak for 100,000 URLs, and took 0.73-0.76 s against 0.24-0.28 s (`benchmarks/scale.py
    --stages dispatch`)."""
    stored = select(CrawlJob.urls).where(CrawlJob.id == job.id, func.jsonb_typeof(CrawlJob.urls) == "array")
    urls = (
        func.jsonb_array_elements(stored.scalar_subquery())
        .table_valued("url", with_ordinality="position")
        .render_derived()
    )
    position = type_coerce(urls.c.position, Integer)
    numbered = select(urls.c.url, position.label("position"), ((position - 1) // size).label("slice")).subquery()
    slices = select(
        literal(job.id),
        numbered.c.slice + first_index,
        literal(job.keywords[0]),
        literal("urls"),
        literal(1),
        func.jsonb_agg(aggregate_order_by(numbered.c.url, numbered.c.position)),
    ).group_by(numbered.c.slice)
    columns = ["crawl_job_id", "chunk_index", "keyword", "provider", "page", "urls"]
    inserted = session.execute(
        insert(CrawlChunk)
        .from_select(columns, slices)
        .on_conflict_do_nothing(index_elements=[CrawlChunk.crawl_job_id, CrawlChunk.chunk_index])
        .returning(CrawlChunk.chunk_index)
    )
    return len(inserted.all())


def _retried(session: Session, job: CrawlJob) -> list[int]:
    """The chunks a retry moved back to pending (the API did, on the locked job row) that no worker has
    claimed again yet: pending chunks have no attempts unless a retry reset them."""
    return list(
        session.scalars(
            select(CrawlChunk.id)
            .where(CrawlChunk.crawl_job_id == job.id, CrawlChunk.status == JobStatus.PENDING, CrawlChunk.attempts > 0)
            .order_by(CrawlChunk.chunk_index)
        )
    )


def _send(job_id: int, chunk_ids: list[int]) -> list[str]:
    if not chunk_ids:
        return []
    message_ids = queues.send_batch(
        get_settings().crawl_queue_url, [ChunkMessage(crawl_job_id=job_id, chunk_id=chunk_id) for chunk_id in chunk_ids]
    )
    with session_scope() as session:
        session.execute(
            update(CrawlJob)
            .where(CrawlJob.id == job_id)
            .values(queued_chunks=CrawlJob.queued_chunks + len(message_ids))
            .execution_options(synchronize_session=False)
        )
    logger.info("crawl job %s: queued %d chunk(s)", job_id, len(chunk_ids))
    return message_ids


def _cutoff(older_than: timedelta | None) -> datetime:
    return now() - (older_than or timedelta(seconds=get_settings().crawl_stuck_after_seconds))


def redispatch_stalled(older_than: timedelta | None = None) -> int:
    """Re-send the dispatch message of jobs still `pending` too long: the API committed the job and then
    died before its message was sent. Dispatch is idempotent, so a message that was merely slow plans
    nothing twice; `updated_at` moves so the next sweep waits again."""
    with session_scope() as session:
        stalled = session.scalars(
            update(CrawlJob)
            .where(CrawlJob.status == JobStatus.PENDING, CrawlJob.updated_at < _cutoff(older_than))
            .values(updated_at=now())
            .returning(CrawlJob.id)
            .execution_options(synchronize_session=False)
        ).all()
    if stalled:
        queues.send_batch(get_settings().dispatch_queue_url, [DispatchMessage(crawl_job_id=job) for job in stalled])
    logger.info("re-sent the dispatch of %d stalled job(s)", len(stalled))
    return len(stalled)


def requeue_stuck(older_than: timedelta | None = None) -> int:
    """Re-send chunks of running jobs left `pending` or `running` too long (a lost message, a killed worker).

    The chunk's row keeps the re-run idempotent, so a chunk that is merely slow loses nothing.
    """
    cutoff = _cutoff(older_than)
    with session_scope() as session:
        stuck = session.execute(
            update(CrawlChunk)
            .where(
                CrawlChunk.status.in_([JobStatus.PENDING, JobStatus.RUNNING]),
                CrawlChunk.updated_at < cutoff,
                CrawlChunk.crawl_job_id.in_(select(CrawlJob.id).where(CrawlJob.status == JobStatus.RUNNING)),
            )
            .values(updated_at=now())
            .returning(CrawlChunk.crawl_job_id, CrawlChunk.id)
            .execution_options(synchronize_session=False)
        ).all()
    if stuck:
        queues.send_batch(
            get_settings().crawl_queue_url, [ChunkMessage(crawl_job_id=job, chunk_id=chunk) for job, chunk in stuck]
        )
    logger.info("re-queued %d stuck chunk(s)", len(stuck))
    return len(stuck)
