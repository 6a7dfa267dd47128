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
