"""Running one crawl chunk: claim it, ask its provider, download and upload concurrently, then account.

Order matters for exactly-once: images are uploaded to deterministic keys BEFORE the transaction that
inserts their rows and ends the chunk. A worker that dies in between leaves the chunk `running`; its
redelivery repeats the same work, overwrites the same objects with the same bytes and commits once.
Objects whose rows were not inserted (over the cap, a cancelled job) are deleted after that commit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import cache, partial

from aws_lambda_powertools import Logger
from sqlalchemy import select

from pixcrawler import aws, bucket, object_keys, observability, queues, sqs_records
from pixcrawler.crawl.accounting import ChunkEnd, ChunkResult, StoredImage, complete_chunk, fail_chunk
from pixcrawler.crawl.download import Downloader, DownloadRejected, Throttled
from pixcrawler.crawl.lanes import Scheduler
from pixcrawler.crawl.refusals import Refusal
from pixcrawler.crawl.threads import Threads
from pixcrawler.db import session_scope
from pixcrawler.lifecycle import now
from pixcrawler.messages import ChunkMessage
from pixcrawler.models import CrawlChunk, CrawlJob, Image, JobStatus
from pixcrawler.providers import Candidate, RateLimited, Work, get_provider
from pixcrawler.settings import Settings, get_settings
from pixcrawler.transfers import Uploader
from pixcrawler.validation import ingest

logger = Logger(child=True)

ORPHAN_PAGE = 1000
"""Keys of a job's prefix compared with its rows at a time when the job ends: one S3 listing page."""


class ChunkDeferred(Exception):
    """The chunk could not run now (e.g. the provider rate-limits us); let SQS deliver it again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: int
    chunk_id: int
    project_id: int
    provider: str
    work: Work
    room: int
    """Images the job could still take when the chunk started; uploads stop there (the commit re-checks)."""
    stop_by: float
    """`time.monotonic()` by which downloads end, so the chunk commits inside its invocation's time."""
    respect_robots: bool
    deferrals: int
    """The chunk's version when claimed: its commit must still find it (see `accounting._lock`)."""
    pending: tuple[Candidate, ...] | None
    """The candidates a deferral kept; None before the chunk was ever deferred (ask the provider)."""


def run_chunk(
    message: ChunkMessage,
    receive_count: int = 1,
    seconds_left: float = math.inf,
    drained: Callable[[], None] = lambda: None,
) -> None:
    """Process one chunk message; raises to have it redelivered, returns to acknowledge it.

    `seconds_left` is the invocation's remaining time. Downloads end early enough for the last blocked
    read to time out and the chunk to commit (`CRAWL_COMMIT_RESERVE_SECONDS`): a chunk of slow hosts ends
    with those candidates refused, instead of being killed by Lambda on every delivery, never ending. A
    chunk that would start with less than `CRAWL_MIN_CHUNK_SECONDS` of download time (the last of a batch
    whose earlier chunks took long) is not claimed but handed back to the queue at once (`ChunkDeferred`),
    for an invocation with time; on its last allowed delivery it runs with what is left. `drained` is called
    once every candidate has been started or set aside (see `sqs_records.process_batch_in_turns`).

    A chunk that fails on its last allowed receive (`MAX_RECEIVE_COUNT`, equal to the queue's
    maxReceiveCount) is marked failed and acknowledged, so the job's accounting ends; the dead-letter queue
    only receives messages that could not be handled at all (unparseable bodies, an unreachable database).
    """
    settings = get_settings()
    too_late = seconds_left - _reserve(settings) < settings.crawl_min_chunk_seconds
    if too_late and not sqs_records.is_last_delivery(receive_count):
        raise ChunkDeferred(f"{seconds_left:.0f} s left: too little to start chunk {message.chunk_id}", 0)
    claim = _claim(message, seconds_left)
    if claim is None:
        return
    started = time.monotonic()
    uploaded: list[str] = []
    end = ChunkEnd(inserted=set(), job_ended=False)

    def fail(reason: str) -> None:
        nonlocal end
        with session_scope() as session:
            end = ChunkEnd(inserted=set(), job_ended=fail_chunk(session, claim.job_id, claim.chunk_id, reason))

    with sqs_records.fail_on_last_delivery(f"chunk {claim.chunk_id}", receive_count, fail):
        try:
            result, uploaded = _gather(claim, drained)
        except RateLimited as error:
            raise ChunkDeferred(f"{type(error).__name__}: {error}", error.retry_after) from error
        with session_scope() as session:
            end = complete_chunk(session, claim.job_id, claim.chunk_id, result, claim.deferrals)
        if end.deferred:
            queues.send(get_settings().crawl_queue_url, message, delay=result.resume_in)
        observability.chunk_completed(len(end.inserted), result.refused, time.monotonic() - started)
        observability.candidates_deferred(result.deferred_by)
    _clean_up(claim, end, uploaded)


def _claim(message: ChunkMessage, seconds_left: float) -> Claim | None:
    """Mark the chunk running, or return None when there is nothing to do (ended, cancelled, unknown)."""
    with session_scope() as session:
        chunk = session.execute(
            select(CrawlChunk)
            .where(CrawlChunk.id == message.chunk_id, CrawlChunk.crawl_job_id == message.crawl_job_id)
            .with_for_update()
        ).scalar_one_or_none()
        if chunk is None:
            logger.warning("chunk %s of job %s does not exist", message.chunk_id, message.crawl_job_id)
            return None
        if chunk.status.finished:
            logger.info("chunk %s already %s", chunk.id, chunk.status.value)
            return None
        job = session.get_one(CrawlJob, chunk.crawl_job_id)
        if job.status is JobStatus.CANCELLED:
            chunk.status, chunk.completed_at = JobStatus.CANCELLED, now()
            return None
        chunk.status, chunk.attempts, chunk.started_at = JobStatus.RUNNING, chunk.attempts + 1, now()
        settings = get_settings()
        return Claim(
            job_id=job.id,
            chunk_id=chunk.id,
            project_id=job.project_id,
            provider=chunk.provider,
            work=Work(chunk.keyword, chunk.page, settings.crawl_page_size, tuple(chunk.urls or ())),
            room=job.remaining_capacity,
            stop_by=time.monotonic() + seconds_left - _reserve(settings),
            respect_robots=job.respect_robots,
            deferrals=chunk.deferrals,
            pending=None if chunk.pending is None else tuple(Candidate(**item) for item in chunk.pending),
        )


def _reserve(settings: Settings) -> float:
    """Time kept back from downloads: a blocked connect and read may still run out, then the commit."""
    return settings.download_connect_timeout + settings.download_read_timeout + settings.crawl_commit_reserve_seconds


def _gather(claim: Claim, drained: Callable[[], None]) -> tuple[ChunkResult, list[str]]:
    """Search (skipped once the job is full, or when a deferral kept the candidates), then download and
    upload with bounded concurrency, each host admitted by its budget (`lanes`)."""
    if claim.room == 0:
        return ChunkResult(found=0, stored=(), refused={}), []
    if claim.pending is None:
        with observability.subsegment(f"## provider {claim.provider}"):
            candidates = get_provider(claim.provider).candidates(claim.work)
    else:
        candidates = list(claim.pending)
    settings = get_settings()
    downloader = Downloader(settings)
    uploader = Uploader(settings.data_bucket, in_flight=settings.download_concurrency)
    budget = _Budget(claim.room)
    try:
        gathered = Scheduler(
            download=partial(_store, claim, downloader, uploader, budget),
            downloader=downloader,
            threads=_threads(settings.download_concurrency),
            settings=settings,
            stop_by=claim.stop_by,
            respect_robots=claim.respect_robots,
            drained=drained,
        ).run(candidates)
        uploader.wait()
    finally:
        downloader.close()
    outcomes = gathered.outcomes
    stored = [outcome for outcome in outcomes if isinstance(outcome, StoredImage)]
    refused = Counter(outcome for outcome in outcomes if isinstance(outcome, Refusal))
    deferred, deferred_by = gathered.deferred, gathered.deferred_by
    if deferred and claim.deferrals >= settings.crawl_max_deferrals:
        refused[Refusal.HOST_UNAVAILABLE] += len(deferred)
        deferred, deferred_by = [], Counter()
    result = ChunkResult(
        found=len(candidates) if claim.pending is None else 0,
        stored=stored,
        refused=refused,
        deferred=[asdict(candidate) for candidate in deferred],
        deferred_by=deferred_by,
        resume_in=gathered.resume_in,
    )
    return result, [image.key for image in stored]


@cache
def _threads(size: int) -> Threads:
    """Download threads outlive a chunk: the chunks an invocation overlaps share them, and warm invocations
    reuse them instead of starting new ones."""
    return Threads(size)


class _Budget:
    """Counts uploads so a chunk stops uploading once it alone could fill the job."""

    def __init__(self, room: int) -> None:
        self._left = room
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def _store(
    claim: Claim, downloader: Downloader, uploader: Uploader, budget: _Budget, candidate: Candidate
) -> StoredImage | Refusal | None:
    """Download one candidate, start its upload and take its facts (one reduced decode, plus the thumbnail it
    yields, uploaded beside it): a StoredImage, the Refusal, or None over the budget. An undecodable image is
    still stored, its facts saying so: validation decides its fate.

    Nothing a candidate's download raises may fail its chunk-mates: a refusal is counted by reason, and an
    exception no one expected (a bug) is logged with its traceback and counted as `unexpected_error`.
    Upload errors are not the candidate's doing: they surface in `Uploader.wait()` and fail the chunk, so
    its redelivery stores the images instead of losing them."""
    try:
        fetched = downloader.fetch(candidate.url, claim.stop_by)
    except Throttled:
        raise  # not the candidate's fault: the scheduler pauses its host and defers it
    except DownloadRejected as error:
        logger.info("refused %s (%s): %s", candidate.url[:200], error.reason.value, error)
        return error.reason
    except Exception:
        logger.exception("refused %s (%s)", candidate.url[:200], Refusal.UNEXPECTED_ERROR.value)
        return Refusal.UNEXPECTED_ERROR
    if not budget.take():
        return None
    extension = fetched.format.extension
    key = object_keys.image_key(claim.project_id, claim.job_id, claim.work.keyword, fetched.sha256, extension)
    uploader.put(key, fetched.data, fetched.content_type)
    ingested = ingest.take(fetched.data, get_settings().validation_max_pixels)
    if ingested.thumbnail is not None and ingested.thumbnail_format is not None:
        thumbnail_format = ingested.thumbnail_format
        uploader.put(object_keys.thumbnail_key(key, thumbnail_format), ingested.thumbnail, f"image/{thumbnail_format}")
    row = {
        "original_url": candidate.url,
        "filename": f"{fetched.sha256[:16]}.{extension}",
        "storage_url": key,
        "width": fetched.width,
        "height": fetched.height,
        "format": fetched.format.name.lower(),
        "file_size": len(fetched.data),
        "sha256": fetched.sha256,
        "keyword": claim.work.keyword,
        "provider": claim.provider,
        "source_url": candidate.source_url,
        "title": candidate.title,
        "license": candidate.license,
        "license_url": candidate.license_url,
        "creator": candidate.creator,
        **ingested.columns,
    }
    return StoredImage(key=key, sha256=fetched.sha256, row=row)


def _clean_up(claim: Claim, end: ChunkEnd, uploaded: list[str]) -> None:
    """Delete objects no row uses. Best effort: the chunk is already committed, and a redelivery would find
    it ended and do nothing, so a failure here is logged rather than raised."""
    try:
        if end.job_ended:
            _delete_job_orphans(claim)
        else:
            _delete_unreferenced(claim.job_id, [key for key in uploaded if key not in end.inserted])
    except Exception as error:
        logger.warning("could not delete unreferenced objects of job %s: %s", claim.job_id, error)


def _delete_unreferenced(job_id: int, keys: list[str]) -> None:
    """Remove uploads that got no row of this chunk (over the cap, job cancelled, a failed commit), unless
    another row of the job uses the same key. Their thumbnails go with them (deleting one never stored is a
    no-op)."""
    if keys:
        unused = set(keys) - _in_use(job_id, keys)
        _delete(sorted(unused | {thumbnail for key in unused for thumbnail in object_keys.thumbnail_keys(key)}))


def _delete_job_orphans(claim: Claim) -> None:
    """When the job ends, its prefix keeps exactly its rows' objects: this also removes what failed or
    crashed attempts uploaded and their successful redelivery did not fetch again.

    The listing is compared with the rows a page at a time (`ORPHAN_PAGE` keys), so the comparison holds a
    page of keys rather than the job's: sets of every key and every row's objects of a 20,000-image job held
    about 10 MiB."""
    pages = bucket.key_pages(object_keys.crawl_job_prefix(claim.project_id, claim.job_id), ORPHAN_PAGE)
    _delete(key for page in pages for key in sorted(set(page) - _in_use(claim.job_id, page)))


def _in_use(job_id: int, keys: list[str]) -> set[str]:
    """The objects the job's rows use, of the images `keys` name (by an original's key or a thumbnail's): each
    row's original and its thumbnail. Rows are found by the sha256 every image key is named by, through the
    job's unique index on it: 10 ms a page of 1,000 keys in a job of 100,000 images, against 22 ms by key."""
    digests = {object_keys.sha256_of(key) for key in keys}
    with session_scope() as session:
        rows = session.execute(
            select(Image.storage_url, Image.thumbnail_format).where(
                Image.crawl_job_id == job_id, Image.sha256.in_(digests)
            )
        )
        return {name for key, thumbnail_format in rows for name in _objects(key, thumbnail_format)}


def _objects(key: str, thumbnail_format: str | None) -> set[str]:
    return {key, object_keys.thumbnail_key(key, thumbnail_format)} if thumbnail_format else {key}


def _delete(keys: Iterable[str]) -> None:
    if removed := bucket.delete(keys):
        logger.info("deleted %d object(s) without an image row", removed)


def defer(receipt_handle: str, seconds: float | None) -> None:
    """Hide a deferred message for the provider's `Retry-After` (SQS allows at most 12 hours).

    Best effort: if the call fails, the queue's own visibility timeout still brings the message back.
    """
    if seconds is None:
        return
    try:
        aws.sqs().change_message_visibility(
            QueueUrl=get_settings().crawl_queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=min(int(seconds) + 1, 43_200),
        )
    except Exception as error:
        logger.warning("could not defer the message by %ss: %s", seconds, error)
