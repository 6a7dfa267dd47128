"""Perceptual hashes and the duplicate pass: copies are caught, different pictures are not, nothing is missed."""

from __future__ import annotations

import io
import random

import pytest

from pixcrawler.schemas.validation import ValidationRules
from pixcrawler.validation.hashing import distance, to_signed, to_unsigned
from pixcrawler.validation.neardup import DENSE_BITS, MultiIndex, Ranked, near_duplicates, pairwise_duplicates
from pixcrawler.validation.rules import Code, inspect
from pixcrawler_local import samples
from tests.validation import images


def phash(data: bytes) -> int:
    result = inspect(io.BytesIO(data), len(data), ValidationRules(), 50_000_000)
    assert result.phash is not None
    return result.phash


def test_resized_and_reencoded_copies_land_within_the_default_threshold() -> None:
    threshold = ValidationRules().near_duplicate_threshold
    for seed in range(8):
        original = phash(samples.jpeg(seed))
        copies = [
            images.resized_copy(seed, 1024, 1024, quality=95),
            images.resized_copy(seed, 512, 512, quality=40),
            images.resized_copy(seed, 400, 300, quality=70),
            images.resized_copy(seed, 192, 192, quality=75),
            samples.encode(samples.picture(seed), "PNG"),
            samples.encode(samples.picture(seed), "WEBP", quality=90),
        ]
        for copy in copies:
            assert distance(original, phash(copy)) <= threshold, seed


def test_different_pictures_are_far_apart() -> None:
    hashes = [phash(samples.jpeg(seed)) for seed in range(40)]
    gaps = [distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(gaps) > ValidationRules().near_duplicate_threshold


def test_signed_storage_round_trips_every_bit() -> None:
    for value in (0, 1, 2**63 - 1, 2**63, 2**64 - 1, 0xDEADBEEFCAFEF00D):
        stored = to_signed(value)
        assert -(2**63) <= stored < 2**63
        assert to_unsigned(stored) == value
        assert distance(stored, value) == 0


@pytest.mark.parametrize("radius", [0, 1, 4, 8, 12, 20, 32])
def test_the_index_finds_exactly_the_pairs_a_full_comparison_finds(radius: int) -> None:
    rng = random.Random(radius)
    hashes = [rng.getrandbits(64) for _ in range(600)]
    for base in rng.sample(hashes, 60):
        flips = rng.sample(range(64), rng.randint(0, radius + 2))
        hashes.append(base ^ sum(1 << bit for bit in flips))
    hashes = [to_signed(value) if rng.random() < 0.5 else value for value in hashes]
    index = MultiIndex(hashes, radius)
    found = {(min(i, j), max(i, j)) for i, value in enumerate(hashes) for j in index.within(value) if i != j}
    expected = pairwise_duplicates(hashes, radius)
    assert found == expected
    assert len(expected) >= 10


def ranked(*hashes: tuple[int, int]) -> Ranked:
    """(image id, hash) pairs, best first."""
    columns = Ranked()
    for image_id, value in hashes:
        columns.append(image_id, value)
    return columns


def test_each_image_is_removed_by_the_best_one_within_the_threshold() -> None:
    base = 0x0123456789ABCDEF
    group = ranked((2, base ^ 0b1), (3, base ^ 0b11), (1, base), (4, ~base & (2**64 - 1)))
    duplicates = list(near_duplicates(group, ValidationRules().near_duplicate_threshold))
    assert {(d.id, d.kept_id, d.distance) for d in duplicates} == {(1, 2, 1), (3, 2, 1)}
    assert all(d.code is Code.NEAR_DUPLICATE for d in duplicates)
    assert "near duplicate of image 2" in str(duplicates[0].as_json()["message"])
    assert duplicates[0].as_json()["duplicate_of"] == 2


def test_chains_do_not_snowball() -> None:
    """a-b and b-c are within the threshold, a-c is not: the best (a) removes b only, c stays."""
    a, b, c = 0, 0b1111, 0b11111111
    duplicates = near_duplicates(ranked((1, a), (2, b), (3, c)), ValidationRules().near_duplicate_threshold)
    assert [(d.id, d.kept_id) for d in duplicates] == [(2, 1)]


def test_the_threshold_is_inclusive_and_signed_hashes_compare_unsigned() -> None:
    pair = ranked((1, 0), (2, 0b111))
    assert list(near_duplicates(pair, 2)) == []
    assert len(list(near_duplicates(pair, 3))) == 1
    assert [d.id for d in near_duplicates(ranked((1, -1), (2, 2**64 - 2)), 1)] == [2]


def test_a_large_job_is_kept_in_two_flat_columns() -> None:
    """16 bytes an image, whatever the count: the pass allocates no object per image to hold them."""
    rng = random.Random(7)
    columns = ranked(*((image_id, rng.getrandbits(64)) for image_id in range(20_000)))
    assert columns.ids.itemsize + columns.hashes.itemsize == 16 and len(columns) == 20_000
    tables = MultiIndex(columns.hashes, 4).tables
    assert all(len(table.starts) <= 2**DENSE_BITS + 1 and len(table.positions) == 20_000 for table in tables)


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_ranges_too_wide_for_a_slot_per_key_hold_only_the_keys_present(radius: int) -> None:
    """Two 32-bit ranges would need 2**32 run starts each; a run table holds one entry per key present."""
    rng = random.Random(radius)
    hashes = [rng.getrandbits(64) for _ in range(2_000)]
    hashes += [hashes[0] ^ 1 << 40, hashes[1]]
    index = MultiIndex(hashes, radius)
    assert all(not hasattr(table, "starts") and len(table.runs) <= len(hashes) for table in index.tables)
    assert sum(len(table.positions) for table in index.tables) == len(hashes) * len(index.tables)
    assert index.within(hashes[1]) == {1: 0, len(hashes) - 1: 0}
    assert (len(hashes) - 2 in index.within(hashes[0])) is (radius >= 1)
