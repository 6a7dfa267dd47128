"""The local stack wires functions the way template.yaml does: the same batch sizes, timeouts, schedule and
receive limit, read from the template itself so the two cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pixcrawler.settings import Settings
from pixcrawler_local.cli import _parser
from pixcrawler_local.emulator import WORK_QUEUES
from pixcrawler_local.stack import StackOptions

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads `!Ref`, `!GetAtt`, `!Sub`... as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _tag)


def _template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)
    return loaded


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and properties.get("CodeUri", "").rstrip("/") == (
            f"functions/{name}"
        ):
            return dict(properties)
    raise AssertionError(f"no function with CodeUri functions/{name}")


def test_each_event_source_matches_the_template() -> None:
    template = _template()
    for queue in WORK_QUEUES:
        function = _function(template, queue.function)
        sources = [event["Properties"] for event in function["Events"].values() if event["Type"] == "SQS"]
        assert len(sources) == 1, queue
        assert sources[0]["BatchSize"] == queue.batch_size, queue
        assert function["Timeout"] == queue.timeout_seconds, queue


def test_the_sweep_schedule_and_the_receive_limit_match_the_template() -> None:
    template = _template()
    sweep = _function(template, "sweep")
    schedules = [event["Properties"]["Schedule"] for event in sweep["Events"].values() if event["Type"] == "Schedule"]
    assert schedules == ["rate(5 minutes)"] and StackOptions.sweep_interval == 300


def test_one_receive_limit_default_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The queues' redrive count and the count at which a worker fails its job readably must agree, deployed
    or local, whether or not MAX_RECEIVE_COUNT is set."""
    monkeypatch.delenv("MAX_RECEIVE_COUNT", raising=False)
    deployed = _template()["Parameters"]["MaxReceiveCount"]["Default"]
    serve = _parser().parse_args(["serve"])
    assert deployed == Settings.from_env().max_receive_count == StackOptions.max_receive_count
    assert serve.max_receive_count == deployed
