"""The tracer: made where Powertools traces (in Lambda), and not at all where it would be disabled, which saves
the X-Ray SDK's import and client on every local start-up and test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[1] / "layers" / "common"

PROBE = """
import json, sys
from pixcrawler import observability
handler = observability.instrumented(lambda event, context: {"answer": event["n"] + 1})
print(json.dumps({
    "answer": handler({"n": 41}, None),
    "tracer": observability._tracer is not None,
    "xray_sdk_loaded": "aws_xray_sdk" in sys.modules,
}))
"""


def probe(**environment: str) -> dict[str, object]:
    """An instrumented handler called in a fresh interpreter with `environment`: what it answered and loaded."""
    keep = {name: value for name, value in os.environ.items() if not name.startswith(("POWERTOOLS_", "LAMBDA_"))}
    env = {**keep, "PYTHONPATH": str(LAYER), "POWERTOOLS_METRICS_DISABLED": "true", **environment}
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    answer: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return answer


@pytest.mark.parametrize(
    "environment",
    [{"POWERTOOLS_TRACE_DISABLED": "true", "LAMBDA_TASK_ROOT": "/var/task"}, {}],
    ids=["disabled", "outside-lambda"],
)
def test_no_tracer_and_no_xray_sdk_where_tracing_is_disabled(environment: dict[str, str]) -> None:
    assert probe(**environment) == {"answer": {"answer": 42}, "tracer": False, "xray_sdk_loaded": False}


def test_a_function_in_lambda_is_traced() -> None:
    seen = probe(
        LAMBDA_TASK_ROOT="/var/task", AWS_LAMBDA_FUNCTION_NAME="crawl", AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR"
    )
    assert seen == {"answer": {"answer": 42}, "tracer": True, "xray_sdk_loaded": True}
