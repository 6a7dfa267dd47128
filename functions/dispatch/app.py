"""SQS-triggered: plan a crawl job into chunks and queue them (or re-queue the chunks a retry reset)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler.crawl.planning import dispatch
from pixcrawler.messages import DispatchMessage

logger = Logger(service="dispatch")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
"""Report every failed record instead of raising: the same redelivery, without an error-level invocation."""


def record_handler(record: SQSRecord) -> None:
    dispatch(DispatchMessage.model_validate_json(record.body))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
