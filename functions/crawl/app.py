"""SQS-triggered: run one crawl chunk per message; a failing message never makes its batch-mates run again."""

from __future__ import annotations

import gc
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler.crawl.worker import ChunkDeferred, defer, run_chunk
from pixcrawler.messages import ChunkMessage

logger = Logger(service="crawl")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
"""Report every failed record instead of raising: the same redelivery, without an error-level invocation."""

gc.freeze()
"""What is imported so far lives as long as the container: keep full collections from rescanning it for
every chunk (about a tenth of a chunk's CPU in benchmarks/crawl.py)."""


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    message = ChunkMessage.model_validate_json(record.body)
    try:
        run_chunk(
            message,
            receive_count=int(record.attributes.approximate_receive_count),
            seconds_left=lambda_context.get_remaining_time_in_millis() / 1000,
        )
    except ChunkDeferred as deferred:
        defer(record.receipt_handle, deferred.retry_after)
        raise


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
