"""Validation worker: SQS messages that plan a validation job or validate one batch of its images."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from pixcrawler.messages import ValidationMessage
from pixcrawler.validation import worker

logger = Logger(service="validate")


class ValidationRecord(SqsRecordModel):
    body: Json[ValidationMessage]  # type: ignore[assignment]


# Report every failed record, even when all failed, instead of raising: SQS retries exactly those.
processor = BatchProcessor(event_type=EventType.SQS, model=ValidationRecord, raise_on_entire_batch_failure=False)


def record_handler(record: ValidationRecord) -> None:
    worker.handle(record.body, receive_count=int(record.attributes.ApproximateReceiveCount))


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
