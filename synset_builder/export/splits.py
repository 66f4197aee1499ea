"""Train/val/test assignment that never leaks, is stratified, and barely reshuffles.

Three promises a trainer relies on. *No leakage*: the unit of assignment is a
near-duplicate group, not an image, so a near copy of a test picture is never in
train. *Stratified*: every class gets its own counts (``class_quotas``: the
fractions of its size, boundaries rounded), so a class of 8 at 0.8/0.1/0.1 has
one val and one test image instead of whatever its few hashes happened to give,
and every class with at least one image per split that has a share (3 with the
default fractions) is in every such split: a val folder missing a class makes
torchvision's ImageFolder number the classes differently from train.
*Stability*: within a class, groups are ranked by a hash of (group key, seed)
and test takes the lowest, val the next, train the rest. So the order never
changes; as a class grows only groups near a band's edge can change split, and
changing the val fraction never moves a test image. Re-exporting into the same
folder pins every earlier image (``pinned``: the previous ``manifest.csv``), and
only new groups fill what is short of each quota, lowest hash first. A hash
threshold alone would never move anything across folders, but left small
classes with no val or test image at all (the first user trial: 7 birds, all in
train), which is the worse failure.

Fixed per-class counts (ImageNet's 50 val images per class) are the same rule
with fixed quotas.
"""

from __future__ import annotations

import hashlib
import math
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

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SplitSpec:
        """The spec ``as_json`` wrote (export.json's ``params.split``)."""
        seed = int(data.get("seed", 0))  # type: ignore[call-overload]
        if "fractions" in data:
            train, val, test = (float(f) for f in data["fractions"])  # type: ignore[attr-defined]
            return cls(fractions=(train, val, test), seed=seed)
        return cls(
            val_per_class=int(data.get("val_per_class", 0)),  # type: ignore[call-overload]
            test_per_class=int(data.get("test_per_class", 0)),  # type: ignore[call-overload]
            seed=seed,
        )

    def describe(self) -> str:
        """The rule in words, for the datasheet (``as_json`` is for machines)."""
        if self.per_class:
            return (
                f"{self.val_per_class or 0} val and {self.test_per_class or 0} test images "
                f"per class, the rest train (seed {self.seed})"
            )
        shares = ", ".join(
            f"{_percent(f)} {s}" for s, f in zip(SPLITS, self.fractions, strict=True)
        )
        return f"{shares} of each class (seed {self.seed})"

    def shared_splits(self) -> tuple[str, ...]:
        """The splits meant to hold some of every class."""
        if self.per_class:
            counts = (1, self.val_per_class or 0, self.test_per_class or 0)
        else:
            counts = self.fractions
        return tuple(s for s, c in zip(SPLITS, counts, strict=True) if c > 0)


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


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


def _round(x: float) -> int:
    """Half up (not Python's half to even), with room for float noise in 0.8+0.1."""
    return math.floor(x + 0.5 + 1e-9)


def class_quotas(n: int, spec: SplitSpec) -> dict[str, int]:
    """How many of a class's ``n`` images go to test and to val (train takes the rest).

    Fractions: the band edges ``n*test`` and ``n*(test+val)`` are each rounded,
    so test's count depends on the test fraction alone and grows with ``n``
    (no Alabama paradox: a class that grows never loses a test slot). Then a class
    with at least one image per shared split gets at least one in each.
    """
    if spec.per_class:
        return {"test": spec.test_per_class or 0, "val": spec.val_per_class or 0}
    train, val, test = spec.fractions
    low, high = _round(n * test), _round(n * (test + val))
    if n >= len(spec.shared_splits()):
        if test > 0:
            low = max(low, 1)
        if val > 0:
            high = max(high, low + 1)
        if train > 0 and high > n - 1:
            high = n - 1
            low = min(low, high - 1 if val > 0 else high)
    return {"test": low, "val": high - low}


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
    # wnid -> the shared splits it has no image in (too small, or groups too big).
    missing: dict[str, tuple[str, ...]] = field(default_factory=dict)


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
    if pinned:
        for key, members in groups.items():
            earlier = _pinned_split(members, pinned)
            if earlier is None:
                continue
            group_split[key] = earlier
            result.pinned += sum(1 for m in members if m.sha256 in pinned)
            result.moved += sum(
                1 for m in members if m.sha256 in pinned and pinned[m.sha256] != earlier
            )
    per_class = _fill_quotas(groups, group_split, spec)
    for key, members in groups.items():
        for m in members:
            result.split[m.sha256] = group_split[key]
    shared = spec.shared_splits()
    for label, have in sorted(per_class.items()):
        if absent := tuple(s for s in shared if not have[s]):
            result.missing[label] = absent
    return result


def _fill_quotas(
    groups: Mapping[str, list[Item]], group_split: dict[str, str], spec: SplitSpec
) -> dict[str, Counter[str]]:
    """Per class, fill test then val with unplaced groups in hash order; per class,
    how many images each split got.

    A group that would overshoot a quota is passed over for a smaller one, so
    classes get exactly their counts whenever the groups allow it. Groups
    already placed (pinned, or by an earlier class they also belong to) count
    towards the quotas, so a group spanning two classes lands in one split.
    """
    in_class: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        for label in {label for m in members for label in m.labels}:
            in_class[label].append(key)
    per_class: dict[str, Counter[str]] = {}
    for label in sorted(in_class):
        keys = sorted(in_class[label], key=lambda k: unit_hash(k, spec.seed))
        sizes = {k: sum(1 for m in groups[k] if label in m.labels) for k in keys}
        quotas = class_quotas(sum(sizes.values()), spec)
        have: Counter[str] = Counter()
        for key in keys:
            if key in group_split:
                have[group_split[key]] += sizes[key]
        for key in keys:
            if key in group_split:
                continue
            split = next((s for s in ("test", "val") if have[s] + sizes[key] <= quotas[s]), "train")
            group_split[key] = split
            have[split] += sizes[key]
        per_class[label] = have
    return per_class


def missing_line(missing: Mapping[str, Sequence[str]], sizes: Mapping[str, int]) -> str:
    """One line naming the classes absent from a split, for the command and the datasheet.

    A torchvision ImageFolder numbers the class folders it finds, so a class absent
    from val shifts the labels of the classes after it; the imagefolder layout writes
    its folder empty, and this line says why that split cannot evaluate it.
    """
    shown = sorted(missing)[:10]
    named = "; ".join(f"{w} ({sizes.get(w, 0)} images): no {', '.join(missing[w])}" for w in shown)
    more = f"; and {len(missing) - len(shown)} more (export.json)" if len(missing) > 10 else ""
    return (
        f"{len(missing)} {'class' if len(missing) == 1 else 'classes'} too small to "
        f"appear in every split: {named}{more}. "
        "Add images, or --min-per-class to drop them."
    )
