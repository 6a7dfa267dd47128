"""Scheduled: re-queue crawl chunks left pending or running past `CRAWL_STUCK_AFTER_SECONDS`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler.crawl.planning import requeue_stuck

logger = Logger(service="sweep")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return {"requeued": requeue_stuck()}
