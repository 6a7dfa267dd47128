"""The resolver: every router under `/v1`, the request middleware and the error handlers, wired once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixcrawler import snapstart
from pixcrawler.api import errors
from pixcrawler.api.body import JsonRequestValidation
from pixcrawler.api.context import request_scope
from pixcrawler.api.routes import (
    activity,
    browser,
    crawl_jobs,
    downloads,
    export_jobs,
    images,
    profile,
    projects,
    system,
    validation_jobs,
)

PREFIX = "/v1"
ROUTERS = (system, browser, downloads, profile, projects, crawl_jobs, images, validation_jobs, export_jobs, activity)

app = APIGatewayHttpResolver(enable_validation=True)
# Powertools builds its request validator itself and offers no hook for reading bodies: swap in the one that
# takes JSON only and answers 4xx for any bytes (pixcrawler.api.body). Routes pick it up on their first call.
app._request_validation_middleware = JsonRequestValidation()
app.use(middlewares=[request_scope])
for module in ROUTERS:
    app.include_router(module.router, prefix=PREFIX)
errors.register(app)


@snapstart.before_snapshot
def _compile() -> None:
    """Build every route's validation models, the OpenAPI document and the docs page once, into the snapshot,
    instead of on the first requests of every environment."""
    system.swagger_html()


logger = Logger()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
