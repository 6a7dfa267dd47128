"""Validation from the facts the crawl took at ingest: no S3 read, the same verdicts as decoding the objects.

The planted cases (truncated, corrupted, thumbnail-sized, blank, a near-duplicate copy, a decompression bomb)
are stored twice: in one crawl job as today's crawl stores them (facts on the row), in another as rows from
before facts existed. Each S3 request the worker's client makes is counted by a botocore event hook.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from pixcrawler import aws as pixcrawler_aws
from pixcrawler import db
from pixcrawler.models import CrawlJob, Image, JobStatus, ValidationBatch, ValidationJob
from pixcrawler.settings import get_settings
from pixcrawler.validation import worker
from pixcrawler_local import samples
from tests import factories
from tests.validation import images
from tests.validation.test_worker import reload, run, validation_job

RULES = {"min_width": 64, "reject_blank": True}


pytestmark = pytest.mark.usefixtures("worker_connections")


def planted() -> dict[str, bytes]:
    return {
        **{f"picture{seed}": samples.jpeg(seed) for seed in range(4)},
        "copy0": images.resized_copy(0, 512, 512),
        "truncated": images.truncated(samples.jpeg(10, 512, 512)),
        "corrupted": images.corrupted(samples.jpeg(6, 512, 512)),
        "tiny": samples.jpeg(11, 40, 40),
        "blank": images.blank(),
        "bomb": images.png_claiming(10_000, 6_000),
    }


@pytest.fixture
def s3_requests() -> Iterator[Counter[str]]:
    """Operations the pipeline's own S3 client sends, by name."""
    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    events = pixcrawler_aws.s3().meta.events
    events.register("before-call.s3", count)
    yield counts
    events.unregister("before-call.s3", count)


def store_all(session: Session, aws: dict[str, Any], *, ingested: bool) -> tuple[CrawlJob, dict[str, Image]]:
    crawl = factories.crawl_job(session)
    stored = {}
    for name, data in planted().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            width, height = PILImage.open(io.BytesIO(data)).size
        stored[name] = factories.stored_image(
            session, aws["s3"], aws["bucket"], crawl, data, width=width, height=height, ingested=ingested
        )
    session.commit()
    return crawl, stored


def verdicts(session: Session, stored: dict[str, Image]) -> dict[str, tuple[Any, ...]]:
    session.expire_all()
    rows = {name: session.get_one(Image, image.id) for name, image in stored.items()}
    return {
        name: (row.is_valid, [error["code"] for error in row.validation_errors or []], row.phash, row.width, row.format)
        for name, row in rows.items()
    }


def test_images_with_facts_are_judged_without_reading_s3_and_as_decoding_them_would(
    session: Session, aws: dict[str, Any], s3_requests: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALIDATION_BATCH_SIZE", "3")
    get_settings.cache_clear()
    with_facts, new = store_all(session, aws, ingested=True)
    assert all(image.decodable is not None for image in new.values())
    before_facts, old = store_all(session, aws, ingested=False)
    assert all(image.decodable is None for image in old.values())

    s3_requests.clear()
    judged = validation_job(session, with_facts, **RULES)
    run(aws, judged)
    assert reload(session, judged).status is JobStatus.COMPLETED
    assert s3_requests["GetObject"] == 0

    decoded = validation_job(session, before_facts, **RULES)
    run(aws, decoded)
    assert reload(session, decoded).status is JobStatus.COMPLETED
    assert s3_requests["GetObject"] == len(old)
    # A batch is worth 3 decodes: 11 images to decode take 4 batches, 11 judged from their facts take one.
    assert (reload(session, judged).total_batches, reload(session, decoded).total_batches) == (1, 4)

    expected = verdicts(session, old)
    assert verdicts(session, new) == expected
    codes = {name: verdict[1] for name, verdict in expected.items()}
    assert codes["truncated"] == ["undecodable"] and codes["corrupted"] == ["undecodable"]
    assert codes["tiny"] == ["width_too_small"] and codes["blank"] == ["blank"]
    assert codes["bomb"] == ["decompression_bomb"] and codes["picture0"] == ["near_duplicate"]
    assert [name for name, verdict in expected.items() if verdict[0]] == ["picture1", "picture2", "picture3", "copy0"]
    messages = [
        session.get_one(Image, stored[name].id).validation_errors
        for stored in (new, old)
        for name in ("truncated", "bomb", "blank")
    ]
    assert messages[:3] == messages[3:]


def test_rules_the_facts_answer_differently_per_job_still_need_no_read(
    session: Session, aws: dict[str, Any], s3_requests: Counter[str]
) -> None:
    """Lenient rules keep what the default rules drop, from the same facts: undecodable pictures pass
    `decodable: false`, blank ones pass without `reject_blank`."""
    crawl, stored = store_all(session, aws, ingested=True)
    s3_requests.clear()
    job = validation_job(session, crawl, decodable=False, near_duplicates="allow")
    run(aws, job)
    assert s3_requests["GetObject"] == 0
    session.expire_all()
    valid = set(session.scalars(select(Image.id).where(Image.crawl_job_id == crawl.id, Image.is_valid.is_(True))))
    assert valid == {stored[name].id for name in stored if name != "bomb"}
    assert reload(session, job).status is JobStatus.COMPLETED
    assert session.get_one(ValidationJob, job.id).invalid_images == 1


def test_a_batch_written_in_several_statements_gives_every_image_its_verdict(
    session: Session, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's results go to the database a few rows per statement, in the batch's one transaction."""
    crawl, stored = store_all(session, aws, ingested=True)
    whole = validation_job(session, crawl, **RULES)
    run(aws, whole)
    expected = verdicts(session, stored)

    monkeypatch.setattr(worker, "RESULTS_PER_STATEMENT", 3)
    session.execute(update(Image).where(Image.crawl_job_id == crawl.id).values(is_valid=None, validation_errors=None))
    session.commit()
    sliced = validation_job(session, crawl, **RULES)
    run(aws, sliced)
    assert reload(session, sliced).total_batches == 1 and len(stored) > 3 * 3
    assert reload(session, sliced).status is JobStatus.COMPLETED
    assert verdicts(session, stored) == expected
    assert all(verdict[0] is not None for verdict in expected.values())


def test_a_batch_of_rows_with_and_without_facts_is_judged_a_page_at_a_time(
    session: Session, aws: dict[str, Any], s3_requests: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows from before facts existed and rows with facts, interleaved in one batch: the first are decoded, the
    others judged in the commit's transaction a page of 3 at a time (5 rows with facts: two reads), and every
    image gets the verdict it gets when the batch is read whole."""
    crawl = factories.crawl_job(session)
    stored = {}
    for index, (name, data) in enumerate(planted().items()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            width, height = PILImage.open(io.BytesIO(data)).size
        stored[name] = factories.stored_image(
            session, aws["s3"], aws["bucket"], crawl, data, width=width, height=height, ingested=index % 2 == 1
        )
    session.commit()
    with_facts = sum(image.decodable is not None for image in stored.values())
    run(aws, validation_job(session, crawl, **RULES))
    expected = verdicts(session, stored)

    monkeypatch.setattr(worker, "RESULTS_PER_STATEMENT", 3)
    session.execute(update(Image).where(Image.crawl_job_id == crawl.id).values(is_valid=None, validation_errors=None))
    session.commit()
    pages: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "images.file_size" in statement:
            pages.append(statement)

    s3_requests.clear()
    paged = validation_job(session, crawl, **RULES)
    event.listen(db.get_engine(), "after_cursor_execute", count)
    try:
        run(aws, paged)
    finally:
        event.remove(db.get_engine(), "after_cursor_execute", count)
    assert reload(session, paged).status is JobStatus.COMPLETED and reload(session, paged).total_batches == 1
    assert s3_requests["GetObject"] == len(stored) - with_facts
    assert with_facts == 5 and len(pages) == 2
    assert verdicts(session, stored) == expected
    batch = session.scalars(select(ValidationBatch).where(ValidationBatch.validation_job_id == paged.id)).one()
    # the near-duplicate copy is dropped after the batches: the batch counted it valid
    assert (batch.valid_images, batch.invalid_images) == (5, len(stored) - 5)


def test_a_verdict_leaves_the_facts_for_the_next_job(session: Session, aws: dict[str, Any]) -> None:
    """A job that rejects every image for its size writes verdicts only: the hashes the crawl took stay on the
    rows, so a later job with other rules still finds the near-duplicate copy without reading an object."""
    crawl, stored = store_all(session, aws, ingested=True)
    hashes = {name: image.phash for name, image in stored.items()}
    strict = validation_job(session, crawl, max_file_size=1)
    run(aws, strict)
    after_strict = verdicts(session, stored)
    assert all(verdict[:2] == (False, ["file_too_large"]) for verdict in after_strict.values())
    assert {name: verdict[2] for name, verdict in after_strict.items()} == hashes

    run(aws, validation_job(session, crawl, **RULES))
    codes = {name: verdict[1] for name, verdict in verdicts(session, stored).items()}
    assert codes["picture0"] == ["near_duplicate"] and codes["copy0"] == []
