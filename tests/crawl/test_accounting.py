"""Many committers on one job: each chunk's commit in its own thread, transaction and connection, as many Lambda
environments end chunks of one job at once, against the real PostgreSQL.

A commit is paused deterministically right before its statement that moves the job's counters (a
`before_cursor_execute` listener on its own engine), and other transactions are started meanwhile; each is then
watched until it has either finished or is waiting on a lock in `pg_stat_activity`, whichever it does.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session

from pixcrawler import db, lifecycle
from pixcrawler.crawl.accounting import ChunkEnd, ChunkResult, StoredImage, complete_chunk
from pixcrawler.models import CrawlChunk, CrawlJob, Image, JobStatus
from tests import factories


def stored(chunk: int, count: int) -> list[StoredImage]:
    """`count` uploaded images of chunk number `chunk`, distinct from every other chunk's."""
    images = []
    for index in range(count):
        sha = hashlib.sha256(f"{chunk}/{index}".encode()).hexdigest()
        key = f"projects/1/crawl-jobs/1/cat/{sha}.jpg"
        row = {"original_url": f"https://a.example/{sha}.jpg", "filename": f"{sha[:16]}.jpg", "storage_url": key}
        images.append(StoredImage(key=key, sha256=sha, row={**row, "sha256": sha, "keyword": "cat"}))
    return images


def running_job(session: Session, chunks: int, max_images: int) -> tuple[int, list[int]]:
    job = factories.crawl_job(
        session, status=JobStatus.RUNNING, max_images=max_images, total_chunks=chunks, active_chunks=chunks
    )
    rows = [
        CrawlChunk(crawl_job_id=job.id, chunk_index=index, keyword="cat", provider="urls", status=JobStatus.RUNNING)
        for index in range(chunks)
    ]
    session.add_all(rows)
    session.commit()
    return job.id, [row.id for row in rows]


@pytest.fixture
def engines(migrated: str) -> Iterator[Callable[[], Engine]]:
    """`engines()`: a new engine with a connection of its own, as each Lambda environment has."""
    made: list[Engine] = []

    def make() -> Engine:
        made.append(db.build_engine(migrated, pool_size=1))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


class Committer(threading.Thread):
    """`complete_chunk` in its own transaction on its own engine; with `pause`, it stops right before the
    statement that moves the job's counters until `resume()`."""

    def __init__(self, engine: Engine, job_id: int, chunk_id: int, result: ChunkResult, pause: bool = False):
        super().__init__(daemon=True)
        self.engine, self.job_id, self.chunk_id, self.result = engine, job_id, chunk_id, result
        self.paused, self._resume = threading.Event(), threading.Event()
        self.end: ChunkEnd | None = None
        self.error: BaseException | None = None
        if pause:
            event.listen(engine, "before_cursor_execute", self._hold)

    def _hold(self, *args: Any) -> None:
        if args[2].startswith("UPDATE crawl_jobs"):
            self.paused.set()
            self._resume.wait()

    def resume(self) -> None:
        self._resume.set()

    def run(self) -> None:
        try:
            with Session(self.engine) as session, session.begin():
                self.end = complete_chunk(session, self.job_id, self.chunk_id, self.result)
        except BaseException as error:
            self.error = error


def finished_or_blocked(thread: threading.Thread, session: Session) -> bool:
    """Wait until `thread` has finished (True) or one of the database's backends waits on a lock (False)."""
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    while thread.is_alive():
        if session.execute(waiting).scalar_one():
            session.rollback()
            return False
        session.rollback()
        time.sleep(0.01)
    return True


def counted(session: Session, job_id: int) -> tuple[Any, ...]:
    session.expire_all()
    job = session.get_one(CrawlJob, job_id)
    rows = session.scalar(select(func.count()).select_from(Image).where(Image.crawl_job_id == job_id))
    chunks = session.execute(
        select(func.sum(CrawlChunk.downloaded), func.sum(CrawlChunk.skipped)).where(CrawlChunk.crawl_job_id == job_id)
    ).one()
    return job.status, job.downloaded_images, rows, *chunks, job.completed_chunks, job.active_chunks


def test_a_chunk_commits_while_another_chunk_of_its_job_is_mid_commit_and_the_cap_stays_exact(
    session: Session, engines: Callable[[], Engine]
) -> None:
    job_id, (first, second) = running_job(session, chunks=2, max_images=15)
    slow = Committer(engines(), job_id, first, ChunkResult(found=10, stored=stored(0, 10), refused={}), pause=True)
    slow.start()
    slow.paused.wait()  # its ten rows are inserted, the job's counters not yet moved
    fast = Committer(engines(), job_id, second, ChunkResult(found=10, stored=stored(1, 10), refused={}))
    fast.start()
    fast_was_free = finished_or_blocked(fast, session)
    slow.resume()
    slow.join()
    fast.join()
    assert fast_was_free, "the second chunk's commit waited for the first chunk's transaction"
    assert (slow.error, fast.error) == (None, None)
    assert slow.end is not None and fast.end is not None
    assert (len(fast.end.inserted), len(slow.end.inserted)) == (10, 5)  # the cap came closer: five were over it
    assert slow.end.inserted == {image.key for image in stored(0, 5)}  # the first five, in the chunk's order
    assert counted(session, job_id) == (JobStatus.COMPLETED, 15, 15, 15, 5, 2, 0)


def test_a_job_cancelled_while_a_chunk_is_mid_commit_keeps_none_of_its_images(
    session: Session, engines: Callable[[], Engine]
) -> None:
    job_id, (first, _) = running_job(session, chunks=2, max_images=100)
    committer = Committer(engines(), job_id, first, ChunkResult(found=4, stored=stored(0, 4), refused={}), pause=True)
    committer.start()
    committer.paused.wait()

    def cancel() -> None:
        with Session(engines()) as other, other.begin():
            job = other.get_one(CrawlJob, job_id)
            lifecycle.cancel(other, factories.profile(other).id, job)

    cancelling = threading.Thread(target=cancel, daemon=True)
    cancelling.start()
    cancel_was_free = finished_or_blocked(cancelling, session)
    committer.resume()
    committer.join()
    cancelling.join()
    assert cancel_was_free, "the cancel waited for the chunk's commit"
    assert committer.error is None and committer.end == ChunkEnd(inserted=set(), job_ended=False)
    session.expire_all()
    assert session.get_one(CrawlChunk, first).status is JobStatus.CANCELLED
    assert counted(session, job_id) == (JobStatus.CANCELLED, 0, 0, 0, 0, 0, 2)


def test_many_committers_and_redeliveries_on_one_job_count_each_chunk_once_up_to_its_cap(
    session: Session, engines: Callable[[], Engine]
) -> None:
    chunks, per_chunk, cap = 12, 10, 97
    job_id, chunk_ids = running_job(session, chunks=chunks, max_images=cap)
    results = {
        chunk_id: ChunkResult(found=per_chunk, stored=stored(n, per_chunk), refused={})
        for n, chunk_id in enumerate(chunk_ids)
    }
    committers = [Committer(engines(), job_id, chunk_id, results[chunk_id]) for chunk_id in chunk_ids for _ in range(2)]
    for committer in committers:
        committer.start()
    for committer in committers:
        committer.join()
    assert [committer.error for committer in committers] == [None] * len(committers)
    ends = [committer.end for committer in committers if committer.end is not None]
    keys = [key for end in ends for key in end.inserted]
    assert len(keys) == len(set(keys)) == cap  # no delivery counted twice, the cap filled exactly
    assert sum(end.job_ended for end in ends) == 1
    assert counted(session, job_id) == (JobStatus.COMPLETED, cap, cap, cap, chunks * per_chunk - cap, chunks, 0)
    stored_keys = set(session.scalars(select(Image.storage_url).where(Image.crawl_job_id == job_id)))
    assert stored_keys == set(keys)
