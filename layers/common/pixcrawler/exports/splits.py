"""Train/validation/test splits: which split each image of an export goes to.

Two promises pull against each other. Stability wants an image's split to depend on nothing but the image
(re-exporting gives the same split, adding images never moves one); stratification wants every label to reach
every split, which a per-image rule cannot promise (any rule of the image alone can send all of a small
label's images to `train`). The rule keeps both, each stated exactly:

1. The hash split. `u = first 8 bytes of sha256("<seed>\\0<image sha256>")` read as an unsigned integer; the
   split names, sorted by code point, lay their fractions end to end on [0, 2**64) (boundaries
   `int(cumulative fraction * 2**64)`, the last split taking the rest), and the image goes to the split
   whose interval holds `u`. This is a pure function of the seed and the image's sha256.
2. The repair, for stratification only. A label with at least as many distinct images as there are splits
   whose images miss a split by the hash rule gets, for each missing split in name order, one image moved
   into it: among its images whose current split holds two or more of the label's images, the one with the
   smallest `sha256("<seed>\\0<split>\\0<image sha256>")`.

Hence, exactly: every label with at least `len(splits)` distinct images has an image in every split; an image
is in its hash split unless its label missed a split by hash (then at most `len(splits) - 1` of the label's
images are moved); and a label whose images reach every split by hash keeps every image where it is however
many images are added, since adding images can only fill splits, never empty them. Images of equal sha256
always share a split: the split is decided per sha256.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_SPLIT = "train"
"""The split of every image of an export that asks for no splits."""

Fractions = Mapping[str, float]
"""Split name -> fraction of the images, fractions summing to 1 (validated by `ExportOptions`)."""

_SCALE = 1 << 64


def _u64(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:8], "big")


def _boundaries(fractions: Fractions) -> tuple[list[str], list[int]]:
    """The names in code-point order and each one's exclusive upper bound on [0, 2**64) but the last's: a
    JSON object's key order is not kept by every store (PostgreSQL's JSONB sorts keys), so it must not matter."""
    names = sorted(fractions)
    bounds, total = [], 0.0
    for name in names[:-1]:
        total += fractions[name]
        bounds.append(int(total * _SCALE))
    return names, bounds


def hash_split(sha256: str, fractions: Fractions, seed: int) -> str:
    """The image's hash split: a pure function of `seed` and `sha256` (hex, any letter case)."""
    names, bounds = _boundaries(fractions)
    return names[bisect_right(bounds, _u64(str(seed), sha256.lower()))]


@dataclass(frozen=True, slots=True)
class SplitPlan:
    """The splits of one export's images: the hash split, except for the `moved` images (sha256 -> split)
    that stratification placed elsewhere, and the resulting image counts per split and label."""

    fractions: dict[str, float]
    seed: int
    moved: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def split_of(self, sha256: str) -> str:
        return self.moved.get(sha256.lower()) or hash_split(sha256, self.fractions, self.seed)


def plan(images: Callable[[], Iterable[tuple[str, str]]], fractions: Fractions, seed: int) -> SplitPlan:
    """Assign every image, given as (sha256, label) pairs that `images()` yields afresh on each call; a
    sha256 has one label (a crawl job stores an image once), a pair listed twice counts twice.

    Memory holds counts per label and split, plus the sha256s of the labels that need a repair, read in a
    second pass only when one does."""
    names = sorted(fractions)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for sha256, label in images():
        counts[label][hash_split(sha256, fractions, seed)] += 1
    short = {label for label, per_split in counts.items() if len(per_split) < len(names)}
    listed: dict[str, Counter[str]] = defaultdict(Counter)
    for sha256, label in images() if short else ():
        if label in short:
            listed[label][sha256.lower()] += 1
    moved: dict[str, str] = {}
    for label in sorted(short):
        if len(listed[label]) < len(names):
            continue
        for sha256, split in _repair(sorted(listed[label]), fractions, seed).items():
            moved[sha256] = split
            counts[label][hash_split(sha256, fractions, seed)] -= listed[label][sha256]
            counts[label][split] += listed[label][sha256]
    return SplitPlan(
        fractions={name: fractions[name] for name in names},
        seed=seed,
        moved=moved,
        counts={name: {label: per[name] for label, per in sorted(counts.items()) if per[name]} for name in names},
    )


def _repair(shas: list[str], fractions: Fractions, seed: int) -> dict[str, str]:
    """Fill the splits a label's distinct images miss by hash (see the module's rule 2); the label has at
    least as many images as splits, so while a split is empty another holds two or more (pigeonhole)."""
    current = {sha: hash_split(sha, fractions, seed) for sha in shas}
    sizes = Counter(current.values())
    moved: dict[str, str] = {}
    for split in sorted(fractions):
        if sizes[split]:
            continue
        donor = min((sha for sha in shas if sizes[current[sha]] >= 2), key=lambda sha: _u64(str(seed), split, sha))
        sizes[current[donor]] -= 1
        current[donor] = moved[donor] = split
        sizes[split] = 1
    return moved
