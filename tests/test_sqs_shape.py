"""Every SQS-triggered function has the one shape of `pixcrawler.sqs_records`: a message that does not parse
as the function's message model is reported as that record's failure, never raised, even when it is the
whole batch (SQS then redelivers it until its dead-letter queue takes it)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, load_function
from tests.events import lambda_context, sqs_event, sqs_record

SQS_FUNCTIONS = ("dispatch", "crawl", "validate", "export")


@pytest.mark.parametrize("function", SQS_FUNCTIONS)
@pytest.mark.parametrize("body", ['{"unexpected": 1}', "not json", '{"crawl_job_id": "x", "export_job_id": []}'])
def test_a_batch_of_unparseable_messages_is_reported_not_raised(function: str, body: str) -> None:
    records = [sqs_record(body), sqs_record(body)]
    response = load_function(function).lambda_handler(sqs_event(*records), lambda_context(function))
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record in records]}


def test_every_module_logs_through_powertools_with_the_templates_service_name() -> None:
    """Layer modules log through a child of the function's Powertools Logger; no module names a service in
    code, so each function's logs carry the `POWERTOOLS_SERVICE_NAME` template.yaml sets for it."""
    root = ROOT / "layers" / "common" / "pixcrawler"
    offenders = [
        str(path.relative_to(ROOT))
        for path in [*root.rglob("*.py"), *(ROOT / "functions").glob("*/app.py")]
        if re.search(r"logging\.getLogger\(|Logger\(service=", path.read_text())
    ]
    assert offenders == []
