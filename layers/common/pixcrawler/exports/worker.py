"""The life of an export job: claim it, stream its images into one S3 object, finish or hand over.

`state` holds the lease, the checkpoint and the status writes; `stream` writes the object through the
format's one output interface. This module only sequences them for one invocation:
- the claim drops a duplicate message while another invocation holds the lease;
- the stream either finishes (phase "assembling") or suspends and queues the continuation;
- joining the parts is repeatable, so a lost commit after it completes the job on redelivery;
- any error fails the job with a readable message and aborts the multipart upload.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from pixcrawler.exports import state, stream
from pixcrawler.exports.checkpoint import Cancelled, Clock, ExportError, LeaseLost
from pixcrawler.settings import get_settings

logger = Logger(child=True)


class Outcome(StrEnum):
    COMPLETED = "completed"
    CONTINUED = "continued"
    FAILED = "failed"
    SKIPPED = "skipped"


def clock_for(context: Any) -> Clock:
    return Clock(
        owner=context.aws_request_id,
        remaining_ms=context.get_remaining_time_in_millis,
        reserve_ms=get_settings().export_reserve_seconds * 1000,
    )


def run(export_job_id: int, clock: Clock) -> Outcome:
    """Advance one export job as far as this invocation's time allows."""
    claimed = state.claim(export_job_id, clock)
    if claimed is None:
        return Outcome.SKIPPED
    job, checkpoint = claimed
    try:
        if checkpoint.phase == "images" and not stream.write(job, checkpoint, clock):
            return Outcome.CONTINUED
        state.complete(job, checkpoint, clock)
        return Outcome.COMPLETED
    except Cancelled:
        logger.info("export %s was cancelled; discarding its upload", job.id)
        state.discard(checkpoint)
        return Outcome.SKIPPED
    except LeaseLost:
        logger.info("export %s is no longer ours; stopping", job.id)
        return Outcome.SKIPPED
    except Exception as error:
        logger.exception("export %s failed", job.id)
        state.fail(job, checkpoint, clock, _describe(error))
        return Outcome.FAILED


def _describe(error: Exception) -> str:
    if isinstance(error, ExportError):
        return str(error)
    return f"The export failed unexpectedly ({type(error).__name__}: {error})."[:1000]
