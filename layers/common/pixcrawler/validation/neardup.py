"""Duplicate removal across a whole crawl job, without comparing every pair.

Near-duplicates are found with multi-index hashing (Norouzi et al.): a 64-bit hash is cut into m disjoint
bit ranges, and by the pigeonhole principle two hashes within Hamming distance r differ by at most r // m bits
on at least one range. Each range keys a hash table; a query probes, in each table, its own key and every key
within r // m bits of it, and compares only the hashes found there. m is chosen per job from the number of
hashes and r to minimise probes plus candidates (for r=4 and 100,000 hashes: about 70 probes and a handful of
candidates instead of 100,000 comparisons). It stays exact: every pair within r is found. Where no split
beats it (a very large r), the index degrades to comparing everything, never to worse.

Which image survives is decided greedily, best first (largest resolution, then the earliest id): each kept
image removes every not-yet-removed image within the threshold. So every removed image is within the
threshold of the image that removed it, and no two kept images are within the threshold of each other.
Chains do not snowball: an image removed by the best one cannot remove others in turn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import comb

from pixcrawler.schemas.validation import DuplicatePolicy, ValidationRules
from pixcrawler.validation.hashing import HASH_BITS, distance, to_unsigned
from pixcrawler.validation.rules import Code


@dataclass(frozen=True, slots=True)
class Candidate:
    """A valid image taking part in the duplicate pass."""

    id: int
    sha256: str
    phash: int | None
    width: int
    height: int

    @property
    def rank(self) -> tuple[int, int]:
        """Sort key, best first: largest resolution, then earliest."""
        return (-self.width * self.height, self.id)


@dataclass(frozen=True, slots=True)
class Duplicate:
    id: int
    kept_id: int
    code: Code
    distance: int

    def as_json(self) -> dict[str, str | int]:
        """The stored reason; `duplicate_of` names the kept image, so a client can show the two side by side
        without parsing the message."""
        if self.code is Code.EXACT_DUPLICATE:
            message = f"identical bytes to image {self.kept_id}"
        else:
            message = f"near duplicate of image {self.kept_id} (hash distance {self.distance} of {HASH_BITS} bits)"
        return {"code": self.code.value, "message": message, "duplicate_of": self.kept_id}


class MultiIndex:
    """Exact radius search over 64-bit hashes by multi-index hashing (see the module docstring)."""

    def __init__(self, hashes: Sequence[int], radius: int) -> None:
        self.hashes = [to_unsigned(value) for value in hashes]
        self.radius = radius
        self.ranges = _cheapest_split(len(self.hashes), radius)
        self.tables: list[dict[int, list[int]]] = [defaultdict(list) for _ in self.ranges]
        for position, value in enumerate(self.hashes):
            for table, (shift, mask, _) in zip(self.tables, self.ranges, strict=True):
                table[(value >> shift) & mask].append(position)

    def within(self, value: int) -> dict[int, int]:
        """Positions of the indexed hashes within the radius of `value`, mapped to their distances."""
        value = to_unsigned(value)
        candidates: set[int] = set()
        for table, (shift, mask, flips) in zip(self.tables, self.ranges, strict=True):
            key = (value >> shift) & mask
            for flip in flips:
                bucket = table.get(key ^ flip)
                if bucket:
                    candidates.update(bucket)
        hashes, radius = self.hashes, self.radius
        return {position: gap for position in candidates if (gap := (value ^ hashes[position]).bit_count()) <= radius}


# (shift, mask, the key flips to probe) per bit range; one range of width 0 means "compare everything".
Split = list[tuple[int, int, list[int]]]


def _cheapest_split(count: int, radius: int) -> Split:
    """The bit ranges minimising the expected work per query: key probes plus the hashes they return
    (random hashes fill a range of w bits at count / 2**w per key)."""
    best: tuple[float, Split] = (float(count), [(0, 0, [0])])
    for parts in range(1, min(radius + 1, HASH_BITS) + 1):
        widths = [HASH_BITS // parts + (1 if part < HASH_BITS % parts else 0) for part in range(parts)]
        sub_radius = radius // parts
        probes = [sum(comb(width, k) for k in range(sub_radius + 1)) for width in widths]
        cost = sum(probe * (1 + count / 2**width) for probe, width in zip(probes, widths, strict=True))
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


def find_duplicates(candidates: Iterable[Candidate], rules: ValidationRules) -> list[Duplicate]:
    """The images to drop under the job's duplicate policies; exact duplicates are settled first."""
    remaining = sorted(candidates, key=lambda candidate: candidate.rank)
    duplicates: list[Duplicate] = []
    if rules.exact_duplicates is DuplicatePolicy.KEEP_ONE:
        duplicates.extend(_exact(remaining))
        dropped = {duplicate.id for duplicate in duplicates}
        remaining = [candidate for candidate in remaining if candidate.id not in dropped]
    if rules.near_duplicates is DuplicatePolicy.KEEP_ONE:
        duplicates.extend(_near(remaining, rules.near_duplicate_threshold))
    return duplicates


def _exact(ranked: Sequence[Candidate]) -> Iterator[Duplicate]:
    """Same sha256. The crawl stores images unique per job by sha256, so within one job this is a safeguard
    that costs one dictionary pass, not a case expected to fire."""
    first: dict[str, Candidate] = {}
    for candidate in ranked:
        kept = first.setdefault(candidate.sha256, candidate)
        if kept is not candidate:
            yield Duplicate(candidate.id, kept.id, Code.EXACT_DUPLICATE, 0)


def _near(ranked: Sequence[Candidate], threshold: int) -> Iterator[Duplicate]:
    hashed = [(candidate, candidate.phash) for candidate in ranked if candidate.phash is not None]
    index = MultiIndex([value for _, value in hashed], threshold)
    removed = [False] * len(hashed)
    for position, (candidate, value) in enumerate(hashed):
        if removed[position]:
            continue
        for other, gap in sorted(index.within(value).items()):
            if other != position and not removed[other]:
                removed[other] = True
                yield Duplicate(hashed[other][0].id, candidate.id, Code.NEAR_DUPLICATE, gap)


def pairwise_duplicates(hashes: Sequence[int], radius: int) -> set[tuple[int, int]]:
    """Every pair of positions within the radius, by comparing all pairs: the baseline the index must match."""
    values = [to_unsigned(value) for value in hashes]
    return {
        (left, right)
        for left in range(len(values))
        for right in range(left + 1, len(values))
        if distance(values[left], values[right]) <= radius
    }
