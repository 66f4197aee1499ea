"""Train/val/test assignment that never leaks and never reshuffles.

Two promises a trainer relies on. *No leakage*: the unit of assignment is a
near-duplicate group, not an image, so a near copy of a test picture is never in
train. *Stability*: a group's split is a function of a hash of (group key, seed)
alone, so exporting again after new images arrived leaves every earlier image
where it was, in any output folder, and changing the val fraction never moves a
test image (test takes the lowest hash values, val the next band).

Fixed per-class counts (ImageNet's 50 val images per class) cannot be stateless:
the n lowest hashes of a growing class change. There the previous export in the
same folder pins its images (``pinned``), and only new groups fill what is left
of each quota, lowest hash first.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from synset_builder.errors import InvalidInput

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSpec:
    """Either fractions of every class, or fixed val/test counts per class."""

    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    val_per_class: int | None = None
    test_per_class: int | None = None
    seed: int = 0

    @property
    def per_class(self) -> bool:
        return self.val_per_class is not None or self.test_per_class is not None

    def as_json(self) -> dict[str, object]:
        if self.per_class:
            return {
                "val_per_class": self.val_per_class or 0,
                "test_per_class": self.test_per_class or 0,
                "seed": self.seed,
            }
        return {"fractions": list(self.fractions), "seed": self.seed}


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` (or ``80,10,10``) -> fractions of train, val, test summing to 1."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError as exc:
        raise InvalidInput(f"--splits {text!r} is not three numbers like 0.8,0.1,0.1.") from exc
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise InvalidInput(f"--splits {text!r} is not three non-negative numbers like 0.8,0.1,0.1.")
    total = sum(parts)
    if abs(total - 1.0) > 1e-6 and abs(total - 100.0) > 1e-6:
        raise InvalidInput(f"--splits {text!r} must add up to 1 (or 100).")
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def unit_hash(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (key, seed), the same on every machine."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class Item:
    """One image to place: its identity, its near-duplicate group, its class(es)."""

    sha256: str
    group: str
    labels: tuple[str, ...]


@dataclass
class Assignment:
    """The split of every image, and what pinning had to reconcile."""

    split: dict[str, str] = field(default_factory=dict)
    # Earlier images moved because their near-duplicate groups merged since.
    moved: int = 0
    pinned: int = 0


def _by_fraction(u: float, fractions: tuple[float, float, float]) -> str:
    _, val, test = fractions
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


def _pinned_split(members: Sequence[Item], pinned: Mapping[str, str]) -> str | None:
    """The split most earlier members had (ties: the evaluation split wins)."""
    if len(members) == 1:  # most groups: no vote to count
        return pinned.get(members[0].sha256)
    votes = Counter(pinned[m.sha256] for m in members if m.sha256 in pinned)
    if not votes:
        return None
    return max(votes, key=lambda s: (votes[s], SPLITS.index(s)))


def assign_splits(
    items: Sequence[Item], spec: SplitSpec, pinned: Mapping[str, str] | None = None
) -> Assignment:
    """Place every group in one split; every member of a group shares it."""
    pinned = pinned or {}
    if any(v not in SPLITS for v in pinned.values()):  # copied only when it must be
        pinned = {k: v for k, v in pinned.items() if v in SPLITS}
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    result = Assignment()
    group_split: dict[str, str] = {}
    for key, members in groups.items():
        earlier = _pinned_split(members, pinned) if pinned else None
        if earlier is not None:
            group_split[key] = earlier
            result.pinned += sum(1 for m in members if m.sha256 in pinned)
            result.moved += sum(
                1 for m in members if m.sha256 in pinned and pinned[m.sha256] != earlier
            )
        elif not spec.per_class:
            group_split[key] = _by_fraction(unit_hash(key, spec.seed), spec.fractions)
    if spec.per_class:
        _fill_quotas(groups, group_split, spec)
    for key, members in groups.items():
        for m in members:
            result.split[m.sha256] = group_split.get(key, "train")
    return result


def _fill_quotas(
    groups: Mapping[str, list[Item]], group_split: dict[str, str], spec: SplitSpec
) -> None:
    """Per class, fill test then val with unplaced groups in hash order.

    A group that would overshoot a quota is passed over for a smaller one, so
    classes get exactly their counts whenever the groups allow it. Groups left
    unplaced after every class had its turn go to train, so a group spanning two
    classes can still be picked by the second.
    """
    in_class: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        for label in {label for m in members for label in m.labels}:
            in_class[label].append(key)
    quotas = {"test": spec.test_per_class or 0, "val": spec.val_per_class or 0}
    for label in sorted(in_class):
        keys = sorted(in_class[label], key=lambda k: unit_hash(k, spec.seed))

        def size(key: str, label: str = label) -> int:
            return sum(1 for m in groups[key] if label in m.labels)

        have = Counter()
        for key in keys:
            if key in group_split:
                have[group_split[key]] += size(key)
        for split in ("test", "val"):
            for key in keys:
                if key in group_split:
                    continue
                if have[split] + size(key) <= quotas[split]:
                    group_split[key] = split
                    have[split] += size(key)
    for key in groups:
        group_split.setdefault(key, "train")
