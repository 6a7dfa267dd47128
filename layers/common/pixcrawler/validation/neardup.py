"""Near-duplicate removal across a whole crawl job, without comparing every pair.

Near-duplicates are found with multi-index hashing (Norouzi et al.): a 64-bit hash is cut into m disjoint bit
ranges, and by the pigeonhole principle two hashes within Hamming distance r differ by at most r // m bits on
at least one range. Each range keys a table; a query probes, in each table, its own key and every key within
r // m bits of it, and compares only the hashes found there. m is chosen per job from the number of hashes and r
to minimise the expected work (each table's `cost`: probes, candidates compared, tables built and held; for r=4
and 100,000 hashes: 5 probes and about 60 candidates instead of 100,000 comparisons). A range of up to 16 bits
keys a dense table, two flat arrays (the positions sorted by key, and where each key's run starts); a wider
one, whose slots would outnumber the hashes, keys a run table (a dict from each key present to its run), which
larger thresholds need: with three 21-22-bit ranges at r=8, a query probes 718 keys, nearly all absent, and
compares about 30 hashes, where five 13-bit ranges compare about 1,000. It stays exact: every pair within r is
found. Where no split beats it (a very large r), the index degrades to comparing everything, never to worse.

The images arrive best first (largest resolution, then the earliest id; the database sorts them), as two
columns of machine integers: 16 bytes an image, where row objects and an index of lists took 12 MiB for
20,000 images and 83 MiB for 100,000 (and a Lambda's memory is sized for the largest job). Each kept image
removes every not-yet-removed image within the threshold. So every removed image is within the threshold of
the image that removed it, and no two kept images are within the threshold of each other. Chains do not
snowball: an image removed by the best one cannot remove others in turn.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, repeat
from math import comb
from operator import xor

from pixcrawler.validation.hashing import HASH_BITS, distance, to_unsigned
from pixcrawler.validation.rules import Code

DENSE_BITS = 16
"""A range of up to 16 bits keys a dense table (2**16 slots at most: 256 KiB of run starts); a wider one a
run table, whose memory follows the hashes, not the range."""


class Ranked:
    """The hashed valid images taking part, in the order they are appended (best first), as two columns."""

    __slots__ = ("hashes", "ids")

    def __init__(self) -> None:
        self.ids = array("q")
        self.hashes = array("Q")

    def append(self, image_id: int, phash: int) -> None:
        """Add the next image; `phash` as stored (signed) or unsigned."""
        self.ids.append(image_id)
        self.hashes.append(to_unsigned(phash))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Duplicate:
    id: int
    kept_id: int
    distance: int
    code: Code = Code.NEAR_DUPLICATE

    def as_json(self) -> dict[str, str | int]:
        """The stored reason; `duplicate_of` names the kept image, so a client can show the two side by side
        without parsing the message."""
        message = f"near duplicate of image {self.kept_id} (hash distance {self.distance} of {HASH_BITS} bits)"
        return {"code": self.code.value, "message": message, "duplicate_of": self.kept_id}


class _Table:
    """The positions of the indexed hashes by one bit range's value: a counting sort, so the positions with
    key k are `positions[starts[k]:starts[k + 1]]`. For ranges of up to DENSE_BITS: every key has a slot, and
    nearly every probe finds positions."""

    __slots__ = ("flips", "mask", "positions", "shift", "starts")

    @staticmethod
    def cost(count: int, width: int, probes: int) -> float:
        """A probe is a turn of a Python loop that nearly always finds positions to add (2 units); building
        visits every hash twice and every one of the 2**w slots."""
        return count * probes * (2.0 + count / 2**width) + 2.0 * count + 0.6 * 2**width

    def __init__(self, hashes: Sequence[int], shift: int, mask: int, flips: list[int]) -> None:
        self.shift, self.mask, self.flips = shift, mask, flips
        starts = array("I", bytes(4 * (mask + 2)))
        for value in hashes:
            starts[((value >> shift) & mask) + 1] += 1
        for key in range(mask + 1):
            starts[key + 1] += starts[key]
        free = array("I", starts)
        positions = array("I", bytes(4 * len(hashes)))
        for position, value in enumerate(hashes):
            key = (value >> shift) & mask
            positions[free[key]] = position
            free[key] += 1
        self.starts, self.positions = starts, positions

    def probe(self, value: int, into: set[int]) -> None:
        """Add to `into` the positions whose key is within this range's flips of `value`'s."""
        key, starts, positions = (value >> self.shift) & self.mask, self.starts, self.positions
        for flip in self.flips:
            probed = key ^ flip
            start, stop = starts[probed], starts[probed + 1]
            if start != stop:
                into.update(positions[start:stop])


class _RunTable:
    """The same for a range wider than DENSE_BITS, whose keys are too many to give each a slot: the positions
    sorted by key, and a dict from each key present to its run (`start << 32 | stop`). Most probes find no
    key, and a dict misses in C (`filter(None, map(runs.get, ...))`) at a fraction of a Python loop's turn."""

    __slots__ = ("flips", "mask", "positions", "runs", "shift")

    @staticmethod
    def cost(count: int, width: int, probes: int) -> float:
        """A probe is a dict lookup in C that nearly always misses (1 unit). Building takes about 10 units a
        hash, and the table holds about 215 bytes a hash where a dense one holds 4: its price is set at 24 a
        hash, so that it is chosen only where queries save far more than that (at 100,000 hashes:
        thresholds 5 and 8, not 0-4, where it would save a few tenths of a second for 20 MiB)."""
        return count * probes * (1.0 + count / 2**width) + 24.0 * count

    def __init__(self, hashes: Sequence[int], shift: int, mask: int, flips: list[int]) -> None:
        self.shift, self.mask, self.flips = shift, mask, flips
        keys = [(value >> shift) & mask for value in hashes]
        self.positions = array("I", sorted(range(len(keys)), key=keys.__getitem__))
        self.runs: dict[int, int] = {}
        start = 0
        for key, count in sorted(Counter(keys).items()):
            self.runs[key] = start << 32 | (start + count)
            start += count

    def probe(self, value: int, into: set[int]) -> None:
        """Add to `into` the positions whose key is within this range's flips of `value`'s."""
        key, positions = (value >> self.shift) & self.mask, self.positions
        for run in filter(None, map(self.runs.get, map(xor, repeat(key), self.flips))):
            into.update(positions[run >> 32 : run & 0xFFFFFFFF])


class MultiIndex:
    """Exact radius search over 64-bit hashes by multi-index hashing (see the module docstring)."""

    def __init__(self, hashes: Sequence[int], radius: int) -> None:
        self.hashes = array("Q", (to_unsigned(value) for value in hashes))
        self.radius = radius
        self.tables = [
            _kind(mask.bit_length())(self.hashes, shift, mask, flips)
            for shift, mask, flips in _cheapest_split(len(self.hashes), radius)
        ]

    def within(self, value: int) -> dict[int, int]:
        """Positions of the indexed hashes within the radius of `value`, mapped to their distances."""
        value = to_unsigned(value)
        candidates: set[int] = set()
        for table in self.tables:
            table.probe(value, candidates)
        hashes, radius = self.hashes, self.radius
        return {position: gap for position in candidates if (gap := (value ^ hashes[position]).bit_count()) <= radius}


# (shift, mask, the key flips to probe) per bit range; one range of width 0 means "compare everything".
Split = list[tuple[int, int, list[int]]]


def _kind(width: int) -> type[_Table | _RunTable]:
    """The table a range of `width` bits keys: a slot per key up to DENSE_BITS, the keys present beyond."""
    return _Table if width <= DENSE_BITS else _RunTable


def _cheapest_split(count: int, radius: int) -> Split:
    """The bit ranges that minimise the expected work (each table kind's `cost`): every query's key probes and
    the hashes they return (random hashes fill a range of w bits at count / 2**w per key), plus building the
    tables. The prices are in units of one candidate compared (about 150 ns here), measured on 20,000 and
    100,000 hashes at thresholds 0-8 (`benchmarks/validate.py`). Four 16-bit ranges are always among the
    choices, as the widest dense split, whatever the radius."""
    best: tuple[float, Split] = (float(count) * count, [(0, 0, [0])])
    for parts in range(1, min(max(radius + 1, HASH_BITS // DENSE_BITS), HASH_BITS) + 1):
        widths = [HASH_BITS // parts + (1 if part < HASH_BITS % parts else 0) for part in range(parts)]
        sub_radius = radius // parts
        cost = sum(
            _kind(width).cost(count, width, sum(comb(width, k) for k in range(sub_radius + 1))) for width in widths
        )
        if cost < best[0]:
            split, shift = [], 0
            for width in widths:
                split.append((shift, (1 << width) - 1, _flips(width, sub_radius)))
                shift += width
            best = (cost, split)
    return best[1]


def _flips(width: int, bits: int) -> list[int]:
    """Every mask of `width` bits with at most `bits` bits set, no flip first."""
    return [sum(1 << bit for bit in chosen) for k in range(bits + 1) for chosen in combinations(range(width), k)]


def near_duplicates(ranked: Ranked, threshold: int) -> Iterator[Duplicate]:
    """The images to drop, each with the better image within `threshold` that removes it."""
    index = MultiIndex(ranked.hashes, threshold)
    removed = bytearray(len(ranked))
    ids = ranked.ids
    for position, value in enumerate(index.hashes):
        if removed[position]:
            continue
        for other, gap in sorted(index.within(value).items()):
            if other != position and not removed[other]:
                removed[other] = 1
                yield Duplicate(ids[other], ids[position], gap)


def pairwise_duplicates(hashes: Sequence[int], radius: int) -> set[tuple[int, int]]:
    """Every pair of positions within the radius, by comparing all pairs: the baseline the index must match."""
    values = [to_unsigned(value) for value in hashes]
    return {
        (left, right)
        for left in range(len(values))
        for right in range(left + 1, len(values))
        if distance(values[left], values[right]) <= radius
    }
