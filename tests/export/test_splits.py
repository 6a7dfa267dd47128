"""The split rule's guarantees, exactly as the README states them, proven over generated exports.

Images are (sha256, label) pairs; hypothesis draws the splits, the seed, the labels and the images, including
labels smaller than, equal to and just above the number of splits (where the stratification repair works)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixcrawler.exports import splits
from pixcrawler.exports.splits import SplitPlan, hash_split

NAMES = ["train", "validation", "test", "holdout", "dev", "a", "B", "c9", "val_2", "z"]
Pairs = list[tuple[str, str]]


@st.composite
def fractions(draw: st.DrawFn) -> dict[str, float]:
    """1 to 10 splits, every fraction positive, summing to 1 within the tolerance the API allows."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=10, unique=True))
    weights = draw(st.lists(st.integers(1, 100), min_size=len(names), max_size=len(names)))
    return {name: weight / sum(weights) for name, weight in zip(names, weights, strict=True)}


def sha(number: int) -> str:
    return hashlib.sha256(f"image {number}".encode()).hexdigest()


@st.composite
def images(draw: st.DrawFn, labels: int = 4, most: int = 40) -> Pairs:
    """Distinct images (each sha256 under one label, as a crawl job stores them)."""
    numbers = draw(st.lists(st.integers(0, 10**6), max_size=most, unique=True))
    return [(sha(number), f"label{draw(st.integers(0, labels - 1))}") for number in numbers]


def assign(pairs: Pairs, fractions: dict[str, float], seed: int) -> tuple[SplitPlan, dict[str, str]]:
    plan = splits.plan(lambda: iter(pairs), fractions, seed)
    return plan, {sha256: plan.split_of(sha256) for sha256, _ in pairs}


def labels_of(pairs: Pairs) -> dict[str, set[str]]:
    members: dict[str, set[str]] = {}
    for sha256, label in pairs:
        members.setdefault(label, set()).add(sha256)
    return members


@settings(max_examples=300, deadline=None)
@given(fractions(), st.integers(0, 2**63 - 1), images())
def test_every_label_with_at_least_as_many_images_as_splits_reaches_every_split(
    fractions: dict[str, float], seed: int, pairs: Pairs
) -> None:
    _, split = assign(pairs, fractions, seed)
    for shas in labels_of(pairs).values():
        if len(shas) >= len(fractions):
            assert {split[sha256] for sha256 in shas} == set(fractions)


@settings(max_examples=300, deadline=None)
@given(fractions(), st.integers(0, 2**63 - 1), images())
def test_an_image_leaves_its_hash_split_only_to_fill_a_split_its_label_missed(
    fractions: dict[str, float], seed: int, pairs: Pairs
) -> None:
    plan, split = assign(pairs, fractions, seed)
    for shas in labels_of(pairs).values():
        by_hash = {hash_split(sha256, fractions, seed) for sha256 in shas}
        moved = [sha256 for sha256 in shas if split[sha256] != hash_split(sha256, fractions, seed)]
        if by_hash == set(fractions) or len(shas) < len(fractions):
            assert moved == []
        else:
            assert len(moved) == len(set(fractions) - by_hash)
            assert {split[sha256] for sha256 in moved} == set(fractions) - by_hash
    assert set(plan.moved) == {sha256 for sha256, _ in pairs if split[sha256] != hash_split(sha256, fractions, seed)}


@settings(max_examples=300, deadline=None)
@given(fractions(), st.integers(0, 2**63 - 1), images(), images())
def test_adding_images_never_moves_an_image_of_a_label_that_reached_every_split_by_hash(
    fractions: dict[str, float], seed: int, pairs: Pairs, more: Pairs
) -> None:
    known = {sha256 for sha256, _ in pairs}
    added = pairs + [(sha256, label) for sha256, label in more if sha256 not in known]
    _, before = assign(pairs, fractions, seed)
    _, after = assign(added, fractions, seed)
    for shas in labels_of(pairs).values():
        if {hash_split(sha256, fractions, seed) for sha256 in shas} == set(fractions):
            assert {sha256: after[sha256] for sha256 in shas} == {sha256: before[sha256] for sha256 in shas}


@settings(max_examples=200, deadline=None)
@given(fractions(), st.integers(0, 2**63 - 1), images(), st.randoms(use_true_random=False))
def test_the_same_images_in_any_order_and_key_order_get_the_same_splits_and_counts(
    fractions: dict[str, float], seed: int, pairs: Pairs, shuffle: random.Random
) -> None:
    shuffled = pairs[:]
    shuffle.shuffle(shuffled)
    reordered = dict(reversed(list(fractions.items())))
    first, split = assign(pairs, fractions, seed)
    second, again = assign(shuffled, reordered, seed)
    assert again == split and second.counts == first.counts and second.moved == first.moved
    assert {sha256.upper(): first.split_of(sha256.upper()) for sha256, _ in pairs} == {
        sha256.upper(): split[sha256] for sha256, _ in pairs
    }


@settings(max_examples=200, deadline=None)
@given(fractions(), st.integers(0, 2**63 - 1), images(), st.lists(st.integers(0, 39), max_size=10))
def test_duplicates_share_a_split_and_the_counts_count_every_listed_image(
    fractions: dict[str, float], seed: int, pairs: Pairs, copies: list[int]
) -> None:
    listed = pairs + [pairs[index] for index in copies if index < len(pairs)]
    plan, split = assign(listed, fractions, seed)
    tally: Counter[tuple[str, str]] = Counter((split[sha256], label) for sha256, label in listed)
    assert plan.counts == {
        name: {label: tally[name, label] for label in sorted({label for _, label in listed}) if tally[name, label]}
        for name in sorted(fractions)
    }
    assert sum(count for per_label in plan.counts.values() for count in per_label.values()) == len(listed)


def test_the_hash_split_lays_the_sorted_names_on_the_unit_interval() -> None:
    """With 20,000 images each split's share is its fraction (within 1.5 points): the hash is uniform and the
    fractions are laid in name order, whatever order the request gave them in."""
    fractions = {"validation": 0.1, "train": 0.7, "test": 0.2}
    tally = Counter(hash_split(sha(number), fractions, 7) for number in range(20_000))
    assert {name: count / 20_000 for name, count in tally.items()} == {
        name: pytest.approx(fraction, abs=0.015) for name, fraction in fractions.items()
    }
    u = int.from_bytes(hashlib.sha256(f"7\0{sha(1)}".encode()).digest()[:8], "big") / 2**64
    expected = "test" if u < 0.2 else "train" if u < 0.9 else "validation"
    assert hash_split(sha(1), fractions, 7) == expected
    assert hash_split(sha(1), fractions, 7) == hash_split(sha(1).upper(), fractions, 7)
    assert Counter(hash_split(sha(n), fractions, 8) == hash_split(sha(n), fractions, 7) for n in range(2_000))[False]


def test_a_small_label_is_repaired_and_a_large_one_is_not() -> None:
    """A label of 3 images that all hash to `train` gets one image moved into each of the other two splits."""
    fractions = {"train": 0.98, "validation": 0.01, "test": 0.01}
    trained = [sha(n) for n in range(1000) if hash_split(sha(n), fractions, 0) == "train"][:3]
    plan, split = assign([(sha256, "cat") for sha256 in trained], fractions, 0)
    assert sorted(split.values()) == ["test", "train", "validation"]
    assert plan.counts == {"test": {"cat": 1}, "train": {"cat": 1}, "validation": {"cat": 1}}
    pair = assign([(sha256, "cat") for sha256 in trained[:2]], fractions, 0)[1]
    assert set(pair.values()) == {"train"}  # fewer images than splits: no guarantee, no move
