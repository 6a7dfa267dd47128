"""API Gateway (HTTP API) entry point: the whole REST API lives in `pixcrawler.api`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler.api.app import handle


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
