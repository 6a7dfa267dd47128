"""SQS-triggered: plan a crawl job into chunks and queue them (or re-queue the chunks a retry reset)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler import observability, sqs_records
from pixcrawler.crawl.planning import dispatch
from pixcrawler.messages import DispatchRecord

logger = Logger()


def record_handler(record: DispatchRecord) -> None:
    observability.chunks_queued(len(dispatch(record.body, sqs_records.receive_count(record))))


@logger.inject_lambda_context
@observability.instrumented
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return sqs_records.process_batch(event, context, record_handler, DispatchRecord)
