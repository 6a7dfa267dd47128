"""A validation job's lifecycle: plan it into batches, validate each batch exactly once, then remove duplicates.

SQS delivers at least once and batches run in parallel, so every step is a conditional update:
- planning creates the batch rows once (unique per job and index) and only re-sends batches not yet done;
- a batch's results, its `completed` status and the job's counters commit in one transaction that first
  claims the batch row (`status <> completed`), so a second delivery finds nothing to claim and writes nothing;
- the duplicate pass and the job's completion run in the one transaction that flips the job from running to
  completed once every batch is done; if it fails, it rolls back and the next delivery tries again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnClause,
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TableValuedAlias

from pixcrawler import aws, lifecycle, observability, queues, sqs_records
from pixcrawler.db import session_scope
from pixcrawler.messages import ValidationMessage
from pixcrawler.models import CrawlJob, Image, JobStatus, ValidationBatch, ValidationJob
from pixcrawler.schemas.validation import DuplicatePolicy, ValidationRules
from pixcrawler.settings import get_settings
from pixcrawler.validation import ingest, neardup, rules
from pixcrawler.validation.hashing import to_signed

log = Logger(child=True)

MISSING_KEYS = ("NoSuchKey", "404", "NotFound")
FACTS_PER_DECODE = 25
"""Images judged from their facts per image read from S3 and decoded, in a batch's budget. Judging costs
well under 1/100 of a decode (benchmarks/validate.py); 25 keeps a batch's write moderate."""
RESULTS_PER_STATEMENT = 500
"""A batch's images are read, judged and written this many at a time, all in the batch's transaction. A
database backend keeps the memory its largest statement needed (its parameter parsed as JSONB and unpacked:
7 MiB more for 5,000 rows at once than for 500), and so does the worker's process (the Python objects of
5,000 rows, verdicts and result rows left 4-5 more MiB of its heap in use than 2,000 did), so a page bounded
by this, not by the batch, keeps both the same whatever a job's size."""
HASHES_PER_FETCH = 2_000
"""The duplicate pass reads the job's hashes through a server-side cursor, this many rows per fetch."""


def handle(message: ValidationMessage, receive_count: int = 1) -> None:
    """Run one message; a failure on its last allowed delivery fails the job with a readable message."""
    step = "planning" if message.batch is None else f"batch {message.batch}"
    with sqs_records.fail_on_last_delivery(step, receive_count, partial(fail, message.validation_job_id)):
        if message.batch is None:
            plan(message.validation_job_id)
        else:
            run_batch(message.validation_job_id, message.batch)


def plan(job_id: int) -> None:
    """Split the crawl job's images into batches of consecutive ids and queue one message per unfinished batch.

    Safe to repeat: batch rows are created once, and a resumed (failed, then re-sent) job only re-queues the
    batches not yet completed.
    """
    with session_scope() as session:
        job = session.get(ValidationJob, job_id, with_for_update=True)
        if job is None:
            log.warning("validation job %s does not exist; message dropped", job_id)
            return
        if job.status in (JobStatus.COMPLETED, JobStatus.CANCELLED):
            return
        try:
            ValidationRules.model_validate(job.validation_rules)
        except ValidationError as error:
            lifecycle.fail(session, job, f"invalid validation rules: {error}")
            return
        if not job.batches:
            _create_batches(session, job, get_settings().validation_batch_size)
        if job.status is JobStatus.FAILED:
            lifecycle.resume(session, job)
        else:
            lifecycle.begin(session, job)
        pending = [batch.batch_index for batch in job.batches if batch.status is not JobStatus.COMPLETED]
    if pending:
        messages = [ValidationMessage(validation_job_id=job_id, batch=index) for index in pending]
        queues.send_batch(get_settings().validation_queue_url, messages)
    else:
        finish_if_done(job_id)


def _create_batches(session: Session, job: ValidationJob, batch_size: int) -> None:
    """Cut the job's images into runs of consecutive ids, each worth `batch_size` decodes: an image judged
    from its facts costs 1/FACTS_PER_DECODE of one, so a job crawled with facts needs far fewer batches."""
    cost = case((Image.decodable.is_(None), FACTS_PER_DECODE), else_=1)
    spent_before = func.sum(cost).over(order_by=Image.id) - cost
    numbered = (
        select(Image.id, (spent_before // (batch_size * FACTS_PER_DECODE)).label("batch_index"))
        .where(Image.crawl_job_id == job.crawl_job_id)
        .subquery()
    )
    ranges = select(
        literal(job.id, Integer),
        numbered.c.batch_index,
        func.min(numbered.c.id),
        func.max(numbered.c.id),
        func.count(),
    ).group_by(numbered.c.batch_index)
    columns = ["validation_job_id", "batch_index", "first_image_id", "last_image_id", "image_count"]
    session.execute(
        pg_insert(ValidationBatch).from_select(columns, ranges).on_conflict_do_nothing(),
    )
    session.expire(job, ["batches"])
    job.total_batches = len(job.batches)
    job.total_images = sum(batch.image_count for batch in job.batches)


@dataclass(frozen=True, slots=True)
class _Batch:
    id: int
    rules: ValidationRules
    crawl_job_id: int
    first_image_id: int
    last_image_id: int

    def images(self, *where: ColumnElement[bool]) -> Select[Any]:
        return select(Image.id).where(
            Image.crawl_job_id == self.crawl_job_id,
            Image.id.between(self.first_image_id, self.last_image_id),
            *where,
        )


def run_batch(job_id: int, batch_index: int) -> None:
    """Validate one batch, then commit it exactly once.

    Images ingested before facts existed (`decodable IS NULL`) are read from S3 and decoded first, outside any
    transaction; a batch holds at most `validation_batch_size` of them. The images with facts are judged in the
    commit's transaction, a page of `RESULTS_PER_STATEMENT` at a time, each page's results written before the
    next page is read: a batch of 5,000 images with facts held all of its rows, their verdicts and their result
    rows at once, and the process kept the memory they had needed."""
    batch = _load_batch(job_id, batch_index)
    if batch is not None:
        _commit_batch(job_id, batch, _decoded(batch))
    finish_if_done(job_id)


def _load_batch(job_id: int, batch_index: int) -> _Batch | None:
    """The batch, or None when there is nothing to do (already done, job finished, or unknown)."""
    with session_scope() as session:
        row = session.execute(
            select(ValidationJob.status, ValidationJob.validation_rules, ValidationJob.crawl_job_id, ValidationBatch)
            .join(ValidationBatch, ValidationBatch.validation_job_id == ValidationJob.id)
            .where(ValidationJob.id == job_id, ValidationBatch.batch_index == batch_index)
        ).one_or_none()
        if row is None:
            log.warning("validation job %s has no batch %s; message dropped", job_id, batch_index)
            return None
        status, rule_values, crawl_job_id, batch = row
        if status is not JobStatus.RUNNING or batch.status is JobStatus.COMPLETED:
            return None
        job_rules = ValidationRules.model_validate(rule_values)
        return _Batch(batch.id, job_rules, crawl_job_id, batch.first_image_id, batch.last_image_id)


def _decoded(batch: _Batch) -> list[tuple[int, rules.Inspection]]:
    """The verdicts of the batch's images without facts, each read from S3 and decoded."""
    with session_scope() as session:
        keys = session.execute(
            batch.images(Image.decodable.is_(None)).add_columns(Image.storage_url).order_by(Image.id)
        ).all()
    bucket, max_pixels = get_settings().data_bucket, get_settings().validation_max_pixels
    return [(image_id, _inspect_object(bucket, key, batch.rules, max_pixels)) for image_id, key in keys]


def _judged(session: Session, batch: _Batch) -> Iterator[list[tuple[int, rules.Inspection]]]:
    """The verdicts of the batch's images with facts, judged from their rows, a page at a time in id order.

    A page arrives as one JSON array of rows: pg8000 decodes a result's every column of every row in Python,
    which cost more CPU than judging them (benchmarks/validate.py); one JSON value is parsed in C."""
    rows = batch.images(Image.decodable.is_not(None), Image.id > bindparam("after"))
    rows = rows.add_columns(Image.file_size, *ingest.FACT_COLUMNS).order_by(Image.id).limit(RESULTS_PER_STATEMENT)
    page = rows.subquery()
    as_json = select(func.json_agg(aggregate_order_by(func.json_build_array(*page.c), page.c.id)))
    after = batch.first_image_id - 1
    while True:
        found = session.execute(as_json, {"after": after}).scalar_one() or []
        if found:
            yield [
                (image_id, rules.judge(ingest.facts_of(*facts), batch.rules, file_size))
                for image_id, file_size, *facts in found
            ]
        if len(found) < RESULTS_PER_STATEMENT:
            return
        after = found[-1][0]


def _inspect_object(bucket: str, key: str, job_rules: ValidationRules, max_pixels: int) -> rules.Inspection:
    """Stream one stored image through the rules; a missing object fails that image, other S3 errors raise."""
    try:
        response = aws.s3().get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in MISSING_KEYS:
            return rules.Inspection((rules.Problem(rules.Code.MISSING, "the stored object is missing"),))
        raise
    body = response["Body"]
    try:
        return rules.inspect(body, response["ContentLength"], job_rules, max_pixels)
    finally:
        body.close()


def _rows(*columns: ColumnClause[Any]) -> TableValuedAlias:
    """The `rows` parameter, a JSON array of objects, as a table of these columns: a page of results goes to
    the database in one statement, where pg8000 would send an executemany row by row."""
    return (
        func.jsonb_to_recordset(bindparam("rows", type_=JSONB)).table_valued(*columns).render_derived(with_types=True)
    )


_IMAGE_RESULTS = _rows(
    column("id", Integer),
    column("is_valid", Boolean),
    column("validation_errors", JSONB),
    column("phash", BigInteger),
    column("width", Integer),
    column("height", Integer),
    column("format", String),
)


def _commit_batch(job_id: int, batch: _Batch, decoded: list[tuple[int, rules.Inspection]]) -> None:
    with session_scope() as session:
        claimed = session.execute(
            update(ValidationBatch)
            .where(ValidationBatch.id == batch.id, ValidationBatch.status != JobStatus.COMPLETED)
            .values(status=JobStatus.COMPLETED, completed_at=func.now())
            .returning(ValidationBatch.id)
        ).first()
        if claimed is None:
            return
        for results in _pages(decoded):
            session.execute(_WRITE_RESULTS, {"rows": [_result_row(image_id, verdict) for image_id, verdict in results]})
        validated, invalid = len(decoded), sum(not verdict.valid for _, verdict in decoded)
        for results in _judged(session, batch):
            _write_verdicts(session, results)
            validated += len(results)
            invalid += sum(not verdict.valid for _, verdict in results)
        session.execute(
            update(ValidationBatch)
            .where(ValidationBatch.id == batch.id)
            .values(valid_images=validated - invalid, invalid_images=invalid)
        )
        total = ValidationJob.validated_images + validated
        session.execute(
            update(ValidationJob)
            .where(ValidationJob.id == job_id)
            .values(
                validated_images=total,
                invalid_images=ValidationJob.invalid_images + invalid,
                completed_batches=ValidationJob.completed_batches + 1,
                progress=func.least(99, total * 100 // func.greatest(ValidationJob.total_images, 1)),
            )
        )


def _pages(results: list[tuple[int, rules.Inspection]]) -> Iterator[list[tuple[int, rules.Inspection]]]:
    return (results[start : start + RESULTS_PER_STATEMENT] for start in range(0, len(results), RESULTS_PER_STATEMENT))


def _result_row(image_id: int, inspection: rules.Inspection) -> dict[str, Any]:
    return {
        "id": image_id,
        "is_valid": inspection.valid,
        "validation_errors": inspection.errors,
        "phash": None if inspection.phash is None else to_signed(inspection.phash),
        "width": inspection.width,
        "height": inspection.height,
        "format": inspection.format,
    }


_WRITE_RESULTS = (
    update(Image)
    .where(Image.id == _IMAGE_RESULTS.c.id)
    .values(
        is_valid=_IMAGE_RESULTS.c.is_valid,
        validation_errors=_IMAGE_RESULTS.c.validation_errors,
        phash=_IMAGE_RESULTS.c.phash,
        width=func.coalesce(_IMAGE_RESULTS.c.width, Image.width),
        height=func.coalesce(_IMAGE_RESULTS.c.height, Image.height),
        format=func.coalesce(_IMAGE_RESULTS.c.format, Image.format),
    )
    .execution_options(synchronize_session=False)
)


def _write_verdicts(session: Session, results: list[tuple[int, rules.Inspection]]) -> None:
    """Store verdicts judged from facts: only `is_valid` and the errors change, as the row already holds the
    dimensions, format and hash the judging read, and a valid image's verdict is its id alone."""
    valid = [image_id for image_id, verdict in results if verdict.valid]
    invalid = [
        {"id": image_id, "validation_errors": verdict.errors} for image_id, verdict in results if not verdict.valid
    ]
    if valid:
        session.execute(_MARK_VALID, {"ids": valid})
    if invalid:
        session.execute(_MARK_INVALID, {"rows": invalid})


_MARK_VALID = (
    update(Image)
    .where(Image.id == func.any(bindparam("ids", type_=ARRAY(Integer))))
    .values(is_valid=True, validation_errors=[])
    .execution_options(synchronize_session=False)
)
_ERRORS = _rows(column("id", Integer), column("validation_errors", JSONB))
_MARK_INVALID = (
    update(Image)
    .where(Image.id == _ERRORS.c.id)
    .values(is_valid=False, validation_errors=_ERRORS.c.validation_errors)
    .execution_options(synchronize_session=False)
)


def finish_if_done(job_id: int) -> None:
    """Once every batch is done, and exactly once: drop duplicates, settle the counters, log the completion."""
    with session_scope() as session:
        job = session.get(ValidationJob, job_id)
        done = ValidationJob.completed_batches >= ValidationJob.total_batches
        if job is None or not lifecycle.complete(session, job, where=(done,), settle=lambda: _settle(session, job)):
            return
        outcome = (job.validated_images - job.invalid_images, job.invalid_images)
    observability.validation_completed(*outcome)


def _settle(session: Session, job: ValidationJob) -> dict[str, Any]:
    """Drop the duplicates and set the crawl job's `valid_images`; what the completion's activity row tells."""
    duplicates = _remove_duplicates(session, job)
    job.invalid_images += len(duplicates)
    crawl_job = _count_valid(session, job.crawl_job_id)
    return {
        "crawl_job_id": crawl_job.id,
        "validated_images": job.validated_images,
        "invalid_images": job.invalid_images,
        "duplicates": len(duplicates),
    }


def _count_valid(session: Session, crawl_job_id: int) -> CrawlJob:
    """Set the crawl job's `valid_images` to the valid rows it has now, not to what the batches counted: an
    image deleted while the job ran would otherwise come back in the count (its deletion's decrement landed on
    the counter before this value replaced it).

    The job row is locked before counting, so the count sees every deletion committed before it and a later
    one decrements the count; it is locked after the duplicate pass updated image rows, the order an image
    deletion takes them in (image, then job), so the two never deadlock.
    """
    crawl_job = session.scalars(select(CrawlJob).where(CrawlJob.id == crawl_job_id).with_for_update()).one()
    valid = select(func.count()).where(Image.crawl_job_id == crawl_job_id, Image.is_valid.is_(True))
    crawl_job.valid_images = session.scalar(valid) or 0
    return crawl_job


def _remove_duplicates(session: Session, job: ValidationJob) -> list[neardup.Duplicate]:
    """Mark the duplicates among this job's valid images invalid, appending the reason to their errors.

    Exact duplicates never get here: a job stores identical bytes once (unique `crawl_job_id, sha256`), which
    keeps the earliest, as `exact_duplicates: keep_one` asks. The database ranks the rest best first (largest
    resolution, then the earliest id) and the pass streams only ids and hashes, a fetch at a time, into two
    columns: 16 bytes an image, and no row objects outlive a fetch (see `neardup`)."""
    job_rules = ValidationRules.model_validate(job.validation_rules)
    if job_rules.near_duplicates is not DuplicatePolicy.KEEP_ONE:
        return []
    last_image_id = select(func.max(ValidationBatch.last_image_id)).where(ValidationBatch.validation_job_id == job.id)
    chosen = (
        Image.crawl_job_id == job.crawl_job_id,
        Image.is_valid.is_(True),
        Image.id <= last_image_id.scalar_subquery(),
    )
    rank = (
        (cast(func.coalesce(Image.width, 0), BigInteger) * func.coalesce(Image.height, 0)).desc(),
        Image.id,
    )
    hashed = select(Image.id, Image.phash).where(*chosen, Image.phash.is_not(None)).order_by(*rank)
    ranked = neardup.Ranked()
    for image_id, phash in session.execute(hashed.execution_options(yield_per=HASHES_PER_FETCH)):
        ranked.append(image_id, phash if phash is not None else 0)  # the query has none missing
    duplicates = list(neardup.near_duplicates(ranked, job_rules.near_duplicate_threshold))
    if duplicates:
        marks = [{"id": duplicate.id, "validation_errors": [duplicate.as_json()]} for duplicate in duplicates]
        results = _ERRORS
        session.execute(
            update(Image)
            .where(Image.id == results.c.id)
            .values(
                is_valid=False,
                validation_errors=func.coalesce(Image.validation_errors, func.jsonb_build_array()).op("||")(
                    results.c.validation_errors
                ),
            )
            .execution_options(synchronize_session=False),
            {"rows": marks},
        )
    return duplicates


def fail(job_id: int, message: str) -> None:
    with session_scope() as session:
        job = session.get(ValidationJob, job_id, with_for_update=True)
        if job is not None:
            lifecycle.fail(session, job, message)
