"""Scheduled: re-send what a lost message or a killed process left behind past `CRAWL_STUCK_AFTER_SECONDS`:
the dispatch of jobs still pending, and the chunks of running jobs still pending or running."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler.crawl.planning import redispatch_stalled, requeue_stuck

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return {"redispatched": redispatch_stalled(), "requeued": requeue_stuck()}
