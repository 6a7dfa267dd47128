"""Validation worker: SQS messages that plan a validation job or validate one batch of its images."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler import observability, sqs_records
from pixcrawler.messages import ValidationRecord
from pixcrawler.validation import worker

logger = Logger()


def record_handler(record: ValidationRecord) -> None:
    worker.handle(record.body, receive_count=sqs_records.receive_count(record))


@logger.inject_lambda_context
@observability.instrumented
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return sqs_records.process_batch(event, context, record_handler, ValidationRecord)
