"""A chunk's commit costs the same in a job of a million images as in a job of ten: it never reads the job's
other images, whatever the planner's statistics say about the job (a growing job is always newer than them)."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

from pixcrawler.crawl.accounting import ChunkResult, StoredImage, complete_chunk
from pixcrawler.models import CrawlChunk, CrawlJob, Image, JobStatus
from tests import factories

HELD = 3_000


def sha(number: int) -> str:
    return hashlib.sha256(str(number).encode()).hexdigest()


def stored(job: CrawlJob, numbers: range) -> list[StoredImage]:
    images = []
    for number in numbers:
        key = f"projects/{job.project_id}/crawl-jobs/{job.id}/cat/{sha(number)}.jpg"
        row = {"original_url": f"https://img.test/{number}.jpg", "filename": f"{number}.jpg", "storage_url": key}
        images.append(StoredImage(key=key, sha256=sha(number), row={**row, "sha256": sha(number), "keyword": "cat"}))
    return images


def grown_job(session: Session, max_images: int) -> tuple[CrawlJob, CrawlChunk]:
    """A running job holding HELD images, all written after the table's statistics were taken."""
    job = factories.crawl_job(session, status=JobStatus.RUNNING, max_images=max_images, total_chunks=2, active_chunks=2)
    chunk = CrawlChunk(crawl_job_id=job.id, chunk_index=0, keyword="cat", provider="urls", status=JobStatus.RUNNING)
    session.add(chunk)
    session.commit()
    session.execute(text("ANALYZE images"))
    session.execute(
        text(
            """INSERT INTO images (crawl_job_id, original_url, filename, storage_url, sha256)
            SELECT :job, 'https://img.test/' || n, n || '.jpg', 'held/' || n,
                   encode(sha256(n::text::bytea), 'hex')
            FROM generate_series(1, :held) AS n"""
        ),
        {"job": job.id, "held": HELD},
    )
    session.execute(
        text("UPDATE crawl_jobs SET downloaded_images = :held WHERE id = :job"), {"held": HELD, "job": job.id}
    )
    session.commit()
    session.expire_all()  # the counters as the worker's own session would read them
    return job, chunk


def images_read(session: Session) -> int:
    """Rows of `images` read by scans so far, as PostgreSQL's statistics count them (this backend's flushed)."""
    session.execute(text("SELECT pg_stat_force_next_flush()"))
    session.commit()
    session.execute(text("SELECT pg_stat_clear_snapshot()"))
    read = session.scalar(
        text("SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE relname = 'images'")
    )
    session.commit()
    return int(read or 0)


def test_a_chunk_commit_reads_none_of_the_jobs_other_images(session: Session) -> None:
    job, chunk = grown_job(session, max_images=10 * HELD)
    candidates = stored(job, range(HELD - 49, HELD + 51))  # 50 the job holds, then 50 new ones
    before = images_read(session)

    end = complete_chunk(session, job.id, chunk.id, ChunkResult(found=100, stored=candidates, refused={}))
    session.commit()

    read = images_read(session) - before
    assert read < 200, f"{read} image rows read to commit 100 candidates"
    assert end.inserted == {image.key for image in candidates[50:]}
    session.refresh(chunk)
    session.refresh(job)
    assert (chunk.downloaded, chunk.refused) == (50, {"duplicate": 50})
    assert job.downloaded_images == HELD + 50


def test_a_chunk_that_fills_the_job_stores_only_the_new_images_it_has_room_for(session: Session) -> None:
    job, chunk = grown_job(session, max_images=HELD + 20)
    candidates = stored(job, range(HELD - 29, HELD + 71))  # 30 the job holds, then 70 new ones

    end = complete_chunk(session, job.id, chunk.id, ChunkResult(found=100, stored=candidates, refused={}))
    session.commit()

    assert end.inserted == {image.key for image in candidates[30:50]}
    assert session.scalar(text("SELECT count(*) FROM images WHERE crawl_job_id = :j"), {"j": job.id}) == HELD + 20
    assert {
        row.storage_url for row in session.query(Image).filter(Image.storage_url.like("projects/%"))
    } == end.inserted
    session.refresh(chunk)
    assert (chunk.downloaded, chunk.skipped, chunk.refused) == (20, 80, {"duplicate": 30})
