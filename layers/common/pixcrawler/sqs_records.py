"""The one shape of an SQS-triggered function: parse each record into its message model, process the batch
with partial failures, and fail work readably on the last delivery the queue allows.

Every SQS function (dispatch, crawl, validate, export) is `process_batch(event, context, handler, Record)`:
changing how batches are processed, or what the last delivery does, is a change here only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache, partial
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models.sqs import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler.settings import get_settings

logger = Logger(child=True)


def process_batch(
    event: dict[str, Any],
    context: LambdaContext,
    record_handler: Callable[..., Any],
    model: type[SqsRecordModel],
) -> PartialItemFailureResponse:
    """Run `record_handler(record)` (or `(record, lambda_context)`) on each record parsed as `model`, and report
    the failed ones so SQS redelivers exactly those.

    `raise_on_entire_batch_failure=False` for every function: when all records fail, reporting them all makes
    SQS redeliver the same messages as raising would, but without an invocation error. Invocation errors are
    kept for what they mean (the function could not run at all: an import error, a timeout), and a failing
    message is handled by its own receive limit and the last-delivery policy below, whatever the batch size.
    """
    processor = BatchProcessor(event_type=EventType.SQS, model=model, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def process_batch_in_turns(
    event: dict[str, Any],
    context: LambdaContext,
    record_handler: Callable[[Any, LambdaContext, Callable[[], None]], None],
    model: type[SqsRecordModel],
) -> PartialItemFailureResponse:
    """Like `process_batch`, but a record's turn comes before the one before it has ended: each record starts
    once the previous one calls its `drained` (it has started all its I/O and only waits for it to end) or
    returns. A record's last I/O and its commit then overlap the next record's work instead of leaving the
    function idle. Records run on their own threads, in the batch's order; Powertools' `AsyncBatchProcessor`
    reports the failed ones, as `process_batch` does."""
    turns = _Turns()

    async def in_turn(record: SqsRecordModel, lambda_context: LambdaContext) -> None:
        await turns.run(partial(record_handler, record, lambda_context))

    processor = AsyncBatchProcessor(event_type=EventType.SQS, model=model, raise_on_entire_batch_failure=False)
    return async_process_partial_response(event=event, record_handler=in_turn, processor=processor, context=context)


class _Turns:
    def __init__(self) -> None:
        self._turn = asyncio.Lock()
        """FIFO: the records' tasks ask for it in the batch's order (`asyncio.gather` starts them so)."""

    async def run(self, work: Callable[[Callable[[], None]], None]) -> None:
        await self._turn.acquire()
        loop = asyncio.get_running_loop()
        passed = False

        def pass_turn() -> None:
            nonlocal passed
            if not passed:
                passed = True
                self._turn.release()

        def drained() -> None:
            loop.call_soon_threadsafe(pass_turn)

        try:
            await loop.run_in_executor(_record_threads(), work, drained)
        finally:
            pass_turn()


@cache
def _record_threads() -> ThreadPoolExecutor:
    """One thread per record of a batch at most (SQS batches hold ten), kept for warm invocations."""
    return ThreadPoolExecutor(max_workers=10, thread_name_prefix="record")


def receive_count(record: SqsRecordModel) -> int:
    """How many times SQS has delivered this message, this delivery included."""
    return int(record.attributes.ApproximateReceiveCount)


def is_last_delivery(receive_count: int) -> bool:
    """True on the delivery after which the queue moves the message to its dead-letter queue instead
    (`MAX_RECEIVE_COUNT` equals the queue's `maxReceiveCount`)."""
    return receive_count >= get_settings().max_receive_count


@contextmanager
def fail_on_last_delivery(step: str, receive_count: int, fail: Callable[[str], None]) -> Iterator[None]:
    """The one last-delivery policy: an error raises, so SQS delivers the message again, until the last allowed
    delivery; then `fail` records a readable error on the work's row (a chunk, a job) and the message is
    acknowledged. The job's own state then says what happened; the dead-letter queue keeps only messages that
    could not be handled at all (an unparseable body, or `fail` itself failing, e.g. the database is down).
    """
    try:
        yield
    except Exception as error:
        if not is_last_delivery(receive_count):
            logger.warning("%s failed on attempt %s, will retry: %s", step, receive_count, error)
            raise
        logger.exception("%s failed on its last attempt (%s)", step, receive_count)
        fail(f"{step} failed after {receive_count} attempts: {type(error).__name__}: {error}")
