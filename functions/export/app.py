"""Export worker: SQS-triggered, one ExportMessage per export job (or per continuation of a long one)."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler import observability, sqs_records
from pixcrawler.exports import state, worker
from pixcrawler.messages import ExportRecord

logger = Logger()


def record_handler(record: ExportRecord, lambda_context: LambdaContext) -> None:
    job_id = record.body.export_job_id
    with sqs_records.fail_on_last_delivery(
        "export", sqs_records.receive_count(record), partial(state.fail_unclaimed, job_id)
    ):
        logger.info("export %s: %s", job_id, worker.run(job_id, worker.clock_for(lambda_context)))


@logger.inject_lambda_context
@observability.instrumented
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return sqs_records.process_batch(event, context, record_handler, ExportRecord)
