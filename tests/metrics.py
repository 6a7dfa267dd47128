"""Reading the CloudWatch EMF documents a handler prints, to assert the metrics an operator would see."""

from __future__ import annotations

import json

import pytest

NAMESPACE = "PixCrawler"

Metric = tuple[str, float, dict[str, str]]
"""(name, value, dimensions) of one printed metric value."""


def enable_metrics(monkeypatch: pytest.MonkeyPatch, service: str) -> None:
    """As template.yaml deploys a function: metrics on, its namespace and service name."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)


def printed_metrics(out: str) -> list[Metric]:
    """Every metric value of every EMF document (a JSON line with `_aws`) in captured stdout, in order."""
    found: list[Metric] = []
    for line in out.splitlines():
        document = json.loads(line) if line.startswith("{") else {}
        if "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == NAMESPACE
            dimensions = {name: document[name] for names in directive["Dimensions"] for name in names}
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    found.append((metric["Name"], value, dimensions))
    return found


def named(metrics: list[Metric], name: str) -> list[Metric]:
    return [metric for metric in metrics if metric[0] == name]
