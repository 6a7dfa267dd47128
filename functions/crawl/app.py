"""SQS-triggered: run one crawl chunk per message, a batch's chunks overlapped (each starts while the one before
it waits for its last downloads and commits); a failing message never makes its batch-mates run again."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler import observability, sqs_records
from pixcrawler.crawl.worker import ChunkDeferred, defer, run_chunk
from pixcrawler.messages import ChunkRecord

logger = Logger()

gc.freeze()
"""What is imported so far lives as long as the container: keep full collections from rescanning it for
every chunk (about a tenth of a chunk's CPU in benchmarks/crawl.py)."""


def record_handler(record: ChunkRecord, lambda_context: LambdaContext, drained: Callable[[], None]) -> None:
    try:
        run_chunk(
            record.body,
            receive_count=sqs_records.receive_count(record),
            seconds_left=lambda_context.get_remaining_time_in_millis() / 1000,
            drained=drained,
        )
    except ChunkDeferred as deferred:
        defer(record.receiptHandle, deferred.retry_after)
        raise


@logger.inject_lambda_context
@observability.instrumented
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return sqs_records.process_batch_in_turns(event, context, record_handler, ChunkRecord)
