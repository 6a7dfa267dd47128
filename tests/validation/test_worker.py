"""The validation worker end to end: real PostgreSQL, moto S3 and SQS, the Lambda handler fed the messages that
are actually on the queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from functions.validate import app
from pixcrawler import db
from pixcrawler.messages import ValidationMessage
from pixcrawler.models import ActivityLog, CrawlJob, Image, JobStatus, ValidationBatch, ValidationJob
from pixcrawler.schemas.validation import ValidationRules
from pixcrawler.services import images as images_service
from pixcrawler.settings import get_settings
from pixcrawler.validation import worker
from pixcrawler.validation.hashing import to_signed
from pixcrawler_local import samples
from tests import factories
from tests.events import lambda_context, sqs_event, sqs_record
from tests.validation import images

pytestmark = pytest.mark.usefixtures("worker_connections")


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("VALIDATION_BATCH_SIZE", "3")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def crawl(session: Session, aws: dict[str, Any]) -> CrawlJob:
    return factories.crawl_job(session)


def store(session: Session, aws: dict[str, Any], crawl: CrawlJob, data: bytes, **fields: Any) -> Image:
    return factories.stored_image(session, aws["s3"], aws["bucket"], crawl, data, **fields)


def validation_job(session: Session, crawl: CrawlJob, **rules: Any) -> ValidationJob:
    job = ValidationJob(
        crawl_job=crawl, name="check", validation_rules=ValidationRules.model_validate(rules).model_dump(mode="json")
    )
    session.add(job)
    session.commit()
    return job


def invoke(*bodies: ValidationMessage | str, receive_count: int = 1) -> list[str]:
    """Run the handler on one SQS event; returns the ids of the records it reported as failed."""
    records = [sqs_record(body, receive_count=receive_count, queue="validation") for body in bodies]
    response = app.lambda_handler(sqs_event(*records), lambda_context("validate"))
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    return [record["messageId"] for record in records if record["messageId"] in failed]


def queued(aws: dict[str, Any]) -> list[str]:
    """Take every message off the validation queue, in batch order: a standard queue promises no order."""
    sqs, url = aws["sqs"], aws["queues"]["validation"]
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(bodies, key=lambda body: json.loads(body)["batch"])


def run(aws: dict[str, Any], job: ValidationJob) -> list[str]:
    """Plan the job, then deliver the batch messages it queued, three per event; returns the batch bodies."""
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    bodies = queued(aws)
    for start in range(0, len(bodies), 3):
        assert invoke(*bodies[start : start + 3]) == []
    return bodies


def reload(session: Session, job: ValidationJob) -> ValidationJob:
    session.expire_all()
    return session.get_one(ValidationJob, job.id)


def error_codes(session: Session, image: Image) -> list[str]:
    session.expire_all()
    row = session.get_one(Image, image.id)
    return [error["code"] for error in row.validation_errors or []]


def snapshot(session: Session, crawl: CrawlJob) -> list[tuple[Any, ...]]:
    session.expire_all()
    rows = session.scalars(select(Image).where(Image.crawl_job_id == crawl.id).order_by(Image.id))
    return [(row.id, row.is_valid, row.validation_errors, row.phash, row.width, row.height) for row in rows]


@pytest.fixture
def mixed(session: Session, aws: dict[str, Any], crawl: CrawlJob) -> dict[str, Image]:
    """Eight images: five distinct pictures, a larger copy of one of them, a truncated file, a tiny one."""
    stored = {f"picture{seed}": store(session, aws, crawl, samples.jpeg(seed), seed=seed) for seed in range(5)}
    stored["truncated"] = store(session, aws, crawl, images.truncated(samples.jpeg(10, 512, 512)))
    stored["copy0"] = store(session, aws, crawl, images.resized_copy(0, 1024, 1024, quality=80), width=1024)
    stored["tiny"] = store(session, aws, crawl, samples.jpeg(11, 40, 40), width=40, height=40)
    session.commit()
    return stored


def test_a_job_in_several_batches_validates_every_image_and_drops_the_worse_duplicate(
    session: Session, aws: dict[str, Any], crawl: CrawlJob, mixed: dict[str, Image], small_batches: None
) -> None:
    job = validation_job(session, crawl, min_width=64)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    planned = reload(session, job)
    assert (planned.status, planned.total_images, planned.total_batches) == (JobStatus.RUNNING, 8, 3)
    assert planned.started_at is not None
    bodies = queued(aws)
    assert sorted(json.loads(body)["batch"] for body in bodies) == [0, 1, 2]

    assert invoke(*bodies[:2]) == []
    halfway = reload(session, job)
    assert halfway.status is JobStatus.RUNNING
    assert (halfway.completed_batches, halfway.validated_images) == (2, 6)
    assert 0 < halfway.progress < 100
    assert invoke(bodies[2]) == []

    done = reload(session, job)
    assert done.status is JobStatus.COMPLETED and done.completed_at is not None and done.progress == 100
    assert (done.validated_images, done.invalid_images, done.completed_batches) == (8, 3, 3)
    assert error_codes(session, mixed["truncated"]) == ["undecodable"]
    assert error_codes(session, mixed["tiny"]) == ["width_too_small"]
    assert error_codes(session, mixed["picture0"]) == ["near_duplicate"]
    [duplicate] = session.get_one(Image, mixed["picture0"].id).validation_errors
    assert f"image {mixed['copy0'].id}" in duplicate["message"] and duplicate["duplicate_of"] == mixed["copy0"].id
    for name in ("copy0", "picture1", "picture2", "picture3", "picture4"):
        row = session.get_one(Image, mixed[name].id)
        assert row.is_valid is True and row.validation_errors == [] and row.phash is not None, name
    rows = snapshot(session, crawl)
    assert sum(valid is False for _, valid, *_ in rows) == done.invalid_images
    assert session.get_one(CrawlJob, crawl.id).valid_images == 5
    assert session.get_one(Image, mixed["copy0"].id).width == 1024
    log = session.scalars(select(ActivityLog)).one()
    owner = crawl.project.user_id
    assert (log.action, log.resource_id, log.user_id) == ("validation_job.completed", str(job.id), owner)
    assert log.metadata_["duplicates"] == 1


def test_redelivery_and_rerunning_change_nothing(
    session: Session, aws: dict[str, Any], crawl: CrawlJob, mixed: dict[str, Image], small_batches: None
) -> None:
    job = validation_job(session, crawl, min_width=64)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    bodies = queued(aws)
    assert invoke(bodies[0], bodies[0]) == []
    assert invoke(bodies[0], receive_count=2) == []
    assert reload(session, job).validated_images == 3
    assert invoke(*bodies[1:]) == []
    first = reload(session, job)
    results = snapshot(session, crawl)
    counters = (first.validated_images, first.invalid_images, first.completed_batches, first.progress)

    assert invoke(ValidationMessage(validation_job_id=job.id), *bodies, receive_count=2) == []
    again = reload(session, job)
    assert (again.validated_images, again.invalid_images, again.completed_batches, again.progress) == counters
    assert again.completed_at == first.completed_at
    assert snapshot(session, crawl) == results
    assert queued(aws) == []
    assert len(session.scalars(select(ActivityLog)).all()) == 1

    rerun = validation_job(session, crawl, min_width=64)
    run(aws, rerun)
    second = reload(session, rerun)
    assert (second.validated_images, second.invalid_images, second.completed_batches, second.progress) == counters
    assert snapshot(session, crawl) == results
    assert session.get_one(CrawlJob, crawl.id).valid_images == 5


def test_concurrent_deliveries_of_every_batch_count_once(
    session: Session, aws: dict[str, Any], crawl: CrawlJob, mixed: dict[str, Image], small_batches: None
) -> None:
    job = validation_job(session, crawl, min_width=64)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    messages = [ValidationMessage.model_validate_json(body) for body in queued(aws)] * 2
    session.commit()
    with ThreadPoolExecutor(max_workers=len(messages)) as pool:
        list(pool.map(worker.handle, messages))
    done = reload(session, job)
    assert (done.status, done.validated_images, done.invalid_images, done.completed_batches) == (
        JobStatus.COMPLETED,
        8,
        3,
        3,
    )
    assert len(session.scalars(select(ActivityLog)).all()) == 1
    assert session.get_one(CrawlJob, crawl.id).valid_images == 5


def test_one_bad_record_fails_alone(
    session: Session, aws: dict[str, Any], crawl: CrawlJob, mixed: dict[str, Image]
) -> None:
    job = validation_job(session, crawl)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    (batch,) = queued(aws)
    records = [sqs_record("{not json", queue="validation"), sqs_record(batch, queue="validation")]
    response = app.lambda_handler(sqs_event(*records), lambda_context("validate"))
    assert response["batchItemFailures"] == [{"itemIdentifier": records[0]["messageId"]}]
    assert reload(session, job).status is JobStatus.COMPLETED


def test_a_missing_object_fails_its_image_only(
    session: Session, aws: dict[str, Any], crawl: CrawlJob, mixed: dict[str, Image]
) -> None:
    aws["s3"].delete_object(Bucket=aws["bucket"], Key=mixed["picture3"].storage_url)
    job = validation_job(session, crawl)
    run(aws, job)
    assert error_codes(session, mixed["picture3"]) == ["missing"]
    assert reload(session, job).status is JobStatus.COMPLETED


def test_an_infrastructure_error_is_retried_then_fails_the_job_readably(
    session: Session,
    aws: dict[str, Any],
    crawl: CrawlJob,
    mixed: dict[str, Image],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = validation_job(session, crawl)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    (batch,) = queued(aws)
    monkeypatch.setenv("DATA_BUCKET", "no-such-bucket")
    get_settings.cache_clear()
    assert len(invoke(batch, receive_count=1)) == 1
    assert reload(session, job).status is JobStatus.RUNNING
    assert invoke(batch, receive_count=3) == []  # the last delivery fails the job and is acknowledged
    failed = reload(session, job)
    assert failed.status is JobStatus.FAILED
    assert failed.error_message is not None and failed.error_message.startswith("batch 0 failed after 3 attempts")
    assert "NoSuchBucket" in failed.error_message
    assert session.scalars(select(Image.is_valid).where(Image.crawl_job_id == crawl.id)).all() == [None] * 8

    monkeypatch.setenv("DATA_BUCKET", aws["bucket"])
    get_settings.cache_clear()
    run(aws, job)
    resumed = reload(session, job)
    assert (resumed.status, resumed.error_message, resumed.validated_images) == (JobStatus.COMPLETED, None, 8)


def test_rules_that_do_not_validate_fail_the_job_naming_the_field(session: Session, crawl: CrawlJob) -> None:
    job = ValidationJob(crawl_job=crawl, name="bad", validation_rules={"min_width": 0, "colour": "red"})
    session.add(job)
    session.commit()
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    failed = reload(session, job)
    assert failed.status is JobStatus.FAILED
    assert failed.error_message is not None
    assert "min_width" in failed.error_message and "colour" in failed.error_message


def test_an_empty_crawl_job_completes_at_once_and_unknown_jobs_are_dropped(
    session: Session, aws: dict[str, Any], crawl: CrawlJob
) -> None:
    job = validation_job(session, crawl)
    assert invoke(ValidationMessage(validation_job_id=job.id), ValidationMessage(validation_job_id=999)) == []
    assert invoke(ValidationMessage(validation_job_id=999, batch=0)) == []
    done = reload(session, job)
    assert (done.status, done.total_images, done.total_batches, done.progress) == (JobStatus.COMPLETED, 0, 0, 100)
    assert queued(aws) == []


def test_a_cancelled_job_validates_nothing_more(
    session: Session, aws: dict[str, Any], crawl: CrawlJob, mixed: dict[str, Image], small_batches: None
) -> None:
    job = validation_job(session, crawl)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    bodies = queued(aws)
    assert invoke(bodies[0]) == []
    session.get_one(ValidationJob, job.id).status = JobStatus.CANCELLED
    session.commit()
    assert invoke(*bodies[1:]) == []
    cancelled = reload(session, job)
    assert (cancelled.status, cancelled.validated_images) == (JobStatus.CANCELLED, 3)
    statuses = session.scalars(select(ValidationBatch.status).order_by(ValidationBatch.batch_index)).all()
    assert statuses == [JobStatus.COMPLETED, JobStatus.PENDING, JobStatus.PENDING]


def test_an_image_deleted_while_validating_is_not_counted_valid(
    session: Session, aws: dict[str, Any], crawl: CrawlJob, small_batches: None
) -> None:
    stored = [store(session, aws, crawl, samples.jpeg(seed), seed=seed) for seed in range(4)]
    owner, doomed = crawl.project.user_id, stored[0].id
    job = validation_job(session, crawl)
    assert invoke(ValidationMessage(validation_job_id=job.id)) == []
    first, last = queued(aws)
    assert invoke(first) == []
    with db.session_scope() as api_session:
        images_service.delete(api_session, owner, doomed)
    assert invoke(last) == []
    assert reload(session, job).status is JobStatus.COMPLETED
    assert session.get_one(CrawlJob, crawl.id).valid_images == 3


def test_of_near_copies_the_largest_then_the_earliest_is_kept_and_the_rest_point_to_it(
    session: Session, aws: dict[str, Any], crawl: CrawlJob
) -> None:
    """The database ranks them (resolution, then id) and the pass streams them a fetch at a time: the copies
    are stored smallest first and more than one fetch apart, so neither order nor paging can pick the winner."""
    base = 0x0123456789ABCDEF
    small = store(
        session, aws, crawl, samples.jpeg(0, 64, 64), ingested=True, phash=to_signed(base), width=256, height=256
    )
    larger = [
        store(
            session,
            aws,
            crawl,
            samples.jpeg(seed, 64, 64),
            ingested=True,
            phash=to_signed(base ^ flip),
            width=1024,
            height=1024,
        )
        for seed, flip in ((1, 0b1), (2, 0b11))
    ]
    far = store(session, aws, crawl, samples.jpeg(3, 64, 64), ingested=True, phash=to_signed(~base & (2**64 - 1)))
    session.commit()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker, "HASHES_PER_FETCH", 1)
        run(aws, validation_job(session, crawl))
    kept = larger[0]
    session.expire_all()
    for copy in (small, larger[1]):
        [reason] = session.get_one(Image, copy.id).validation_errors
        assert (reason["code"], reason["duplicate_of"]) == ("near_duplicate", kept.id)
    assert session.get_one(Image, kept.id).is_valid is True and session.get_one(Image, far.id).is_valid is True
    assert reload(session, session.scalars(select(ValidationJob)).one()).invalid_images == 2
