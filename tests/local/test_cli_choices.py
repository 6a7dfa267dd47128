"""`pixcrawler crawl` offers exactly the providers, formats and layouts the API accepts."""

from __future__ import annotations

import argparse
from enum import StrEnum

import pytest

from pixcrawler.schemas import ExportFormat, ExportLayout, Provider
from pixcrawler_local.cli import _parser


def _crawl_options() -> dict[str, argparse.Action]:
    [commands] = [action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return {option: action for action in commands.choices["crawl"]._actions for option in action.option_strings}


@pytest.mark.parametrize(
    ("option", "schema"), [("--provider", Provider), ("--format", ExportFormat), ("--layout", ExportLayout)]
)
def test_crawl_choices_are_the_schema_enums(option: str, schema: type[StrEnum]) -> None:
    action = _crawl_options()[option]
    assert action.choices == [member.value for member in schema]
    assert action.default is None or action.default in [member.value for member in schema]


def test_every_choice_parses_to_a_plain_value() -> None:
    args = _parser().parse_args(["crawl", "cats", "--provider", "wikimedia", "--format", "tar.gz", "--layout", "flat"])
    assert (args.provider, args.format, args.layout) == (["wikimedia"], "tar.gz", "flat")


def test_only_the_demo_gives_up_on_a_stage_by_default() -> None:
    """`--timeout` is one argparse action shared by the commands: a default set for the demo once leaked into
    `crawl`, which then abandoned any stage longer than 180 s (a 20,000-image crawl)."""
    assert _parser().parse_args(["crawl", "cats"]).timeout is None
    assert _parser().parse_args(["crawl", "cats", "--timeout", "5"]).timeout == 5
    assert _parser().parse_args(["demo"]).timeout is None  # cmd_demo applies DEMO_TIMEOUT
