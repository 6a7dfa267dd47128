"""Export worker: SQS-triggered, one ExportMessage per export job (or per continuation of a long one)."""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from pixcrawler.exports import worker
from pixcrawler.messages import ExportMessage

logger = Logger(service="export")


class ExportRecord(SqsRecordModel):
    body: Json[ExportMessage]  # type: ignore[assignment]


processor = BatchProcessor(event_type=EventType.SQS, model=ExportRecord)


def record_handler(record: ExportRecord, lambda_context: LambdaContext) -> str:
    outcome = worker.run(record.body.export_job_id, worker.clock_for(lambda_context))
    logger.info("export %s: %s", record.body.export_job_id, outcome)
    return outcome.value


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
