"""The bodies of the SQS messages between functions: one definition for the sender and the receiver, and the
SQS record each receiving function parses (`<Kind>Record`, the body as its message).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models.sqs import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Json


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispatchMessage(Message):
    """Plan a crawl job into chunks; with `retry`, re-send the failed chunks the API's retry reset to pending."""

    crawl_job_id: int
    retry: bool = False


class ChunkMessage(Message):
    crawl_job_id: int
    chunk_id: int


class ValidationMessage(Message):
    """Without `batch`, plan the validation job; with it, validate that batch of image ids."""

    validation_job_id: int
    batch: int | None = None


class ExportMessage(Message):
    export_job_id: int


class DispatchRecord(SqsRecordModel):
    """An SQS record whose body Powertools' parser validates as a `DispatchMessage` before the handler runs."""

    body: Json[DispatchMessage]  # type: ignore[assignment]


class ChunkRecord(SqsRecordModel):
    body: Json[ChunkMessage]  # type: ignore[assignment]


class ValidationRecord(SqsRecordModel):
    body: Json[ValidationMessage]  # type: ignore[assignment]


class ExportRecord(SqsRecordModel):
    body: Json[ExportMessage]  # type: ignore[assignment]
