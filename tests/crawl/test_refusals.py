"""Refusal reasons as a user reads them: most frequent first, the rest summed, unknown codes by name."""

from __future__ import annotations

from pixcrawler.crawl.refusals import Refusal, describe


def test_reasons_are_described_most_frequent_first_and_the_rest_summed() -> None:
    counts = {"timeout": 1, "duplicate": 5, "not_an_image": 2, "too_large": 2, "zero": 0}
    assert describe(counts) == "5 duplicate, 2 not an image, 2 too large, 1 timeout"
    assert describe(counts, leading=2) == "5 duplicate, 2 not an image, 3 for other reasons"
    assert describe({}) == ""


def test_a_code_this_version_does_not_know_is_shown_by_name() -> None:
    assert describe({"some_new_code": 2, Refusal.TIMEOUT: 1}) == "2 some_new_code, 1 timeout"


def test_every_code_has_a_label() -> None:
    assert all(code.label for code in Refusal)
