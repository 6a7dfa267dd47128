"""Migration hook: the CloudFormation custom resource that `sam deploy` runs before new code takes traffic.

Create and Update bring the schema to the head revision shipped beside this file; Delete leaves the
database alone. Every outcome is answered to CloudFormation (see pixcrawler.custom_resource).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from pixcrawler.custom_resource import Result, respond_always
from pixcrawler.migrations import upgrade_to_head

logger = Logger()

ALEMBIC_INI = Path(__file__).resolve().parent / "alembic.ini"
PHYSICAL_ID = "pixcrawler-schema"


def migrate(event: Mapping[str, Any]) -> Result:
    if event["RequestType"] == "Delete":
        return Result(PHYSICAL_ID, {"Revision": "unchanged"})
    outcome = upgrade_to_head(ALEMBIC_INI)
    logger.info("Schema migrated", extra={"before": outcome.before, "after": outcome.after, "ahead": outcome.ahead})
    return Result(PHYSICAL_ID, {"Revision": outcome.revision, "DatabaseAhead": str(outcome.ahead).lower()})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    return {"Status": respond_always(event, context.get_remaining_time_in_millis(), migrate)}
