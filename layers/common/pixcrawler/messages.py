"""The bodies of the SQS messages between functions: one definition for the sender and the receiver."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


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
