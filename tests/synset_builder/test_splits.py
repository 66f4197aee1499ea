"""Split assignment: sizes, stratification, groups kept whole, stability as data grows."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from synset_builder.errors import InvalidInput
from synset_builder.export.splits import Item, SplitSpec, assign_splits, parse_fractions


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def items(classes: dict[str, int], *, group_every: int = 0, tag: str = "") -> list[Item]:
    """``n`` images per class; every ``group_every``-th image joins its predecessor's group."""
    out: list[Item] = []
    for wnid, n in classes.items():
        for i in range(n):
            s = sha(f"{tag}{wnid}-{i}")
            group = out[-1].group if group_every and i % group_every == 1 else s
            out.append(Item(s, group, (wnid,)))
    return out


def test_fractions_are_met_per_class_and_groups_never_straddle() -> None:
    data = items({"a": 2000, "b": 1000, "c": 500}, group_every=4)
    result = assign_splits(data, SplitSpec(fractions=(0.8, 0.1, 0.1), seed=3))
    for wnid, n in {"a": 2000, "b": 1000, "c": 500}.items():
        counts = Counter(result.split[i.sha256] for i in data if i.labels == (wnid,))
        assert abs(counts["train"] / n - 0.8) < 0.05, (wnid, counts)
        assert abs(counts["val"] / n - 0.1) < 0.04, (wnid, counts)
        assert abs(counts["test"] / n - 0.1) < 0.04, (wnid, counts)
    by_group: dict[str, set[str]] = {}
    for i in data:
        by_group.setdefault(i.group, set()).add(result.split[i.sha256])
    assert sum(1 for i in data if i.group != i.sha256) > 100
    assert all(len(s) == 1 for s in by_group.values())


def test_adding_images_keeps_every_earlier_split() -> None:
    spec = SplitSpec(seed=7)
    before = items({"a": 300, "b": 300}, group_every=3)
    first = assign_splits(before, spec).split
    more = before + items({"a": 100, "b": 50, "new": 80}, tag="later-")
    # Re-exported into the same folder: the previous manifest pins every earlier image.
    second = assign_splits(more, spec, pinned=first).split
    assert all(second[s] == split for s, split in first.items())
    # Into a new folder: the hash order is the same, only groups at a band's edge move,
    # and only to the neighbouring split (never train <-> test).
    fresh = assign_splits(more, spec).split
    moved = {(first[s], fresh[s]) for s in first if fresh[s] != first[s]}
    assert sum(fresh[s] != first[s] for s in first) <= 0.03 * len(first)
    assert not moved & {("train", "test"), ("test", "train")}
    # And the seed really matters: another seed reshuffles.
    other = assign_splits(before, SplitSpec(seed=8)).split
    assert sum(other[s] != first[s] for s in first) > 30


def test_growing_val_fraction_never_moves_a_test_image() -> None:
    data = items({"a": 1000})
    small = assign_splits(data, SplitSpec(fractions=(0.85, 0.05, 0.1))).split
    large = assign_splits(data, SplitSpec(fractions=(0.7, 0.2, 0.1))).split
    assert {s for s, v in small.items() if v == "test"} == {
        s for s, v in large.items() if v == "test"
    }


def test_per_class_counts_are_exact_and_pinned_on_reexport() -> None:
    spec = SplitSpec(val_per_class=5, test_per_class=3, seed=1)
    data = items({"a": 40, "b": 25, "c": 12}, group_every=5)
    first = assign_splits(data, spec)
    for wnid in ("a", "b", "c"):
        counts = Counter(first.split[i.sha256] for i in data if i.labels == (wnid,))
        assert counts["test"] == 3 and counts["val"] == 5, (wnid, counts)
    # The class grows: earlier images stay put, quotas stay full (never exceeded).
    grown = data + items({"a": 60, "c": 10}, tag="more-")
    second = assign_splits(grown, spec, pinned=first.split)
    assert all(second.split[s] == v for s, v in first.split.items())
    counts = Counter(second.split[i.sha256] for i in grown if i.labels == ("a",))
    assert counts["test"] == 3 and counts["val"] == 5
    assert second.pinned == len(data) and second.moved == 0


def test_group_spanning_two_classes_lands_in_one_split_with_quotas() -> None:
    shared = sha("shared")
    data = items({"a": 10, "b": 10})
    data += [Item(shared, shared, ("a",)), Item(sha("crop"), shared, ("b",))]
    result = assign_splits(data, SplitSpec(val_per_class=2, test_per_class=2, seed=0)).split
    assert result[shared] == result[sha("crop")]


def test_merged_groups_follow_the_majority_of_their_earlier_members() -> None:
    a, b, c = sha("x"), sha("y"), sha("z")
    pinned = {a: "test", b: "test", c: "train"}
    merged = [Item(a, a, ("k",)), Item(b, a, ("k",)), Item(c, a, ("k",))]
    result = assign_splits(merged, SplitSpec(), pinned=pinned)
    assert {result.split[x] for x in (a, b, c)} == {"test"}
    assert result.moved == 1


@pytest.mark.parametrize("text", ["0.8,0.1", "a,b,c", "0.5,0.5,0.5", "-1,1,1"])
def test_bad_split_fractions_are_one_sentence(text: str) -> None:
    with pytest.raises(InvalidInput, match="--splits"):
        parse_fractions(text)


def test_percentages_are_accepted() -> None:
    assert parse_fractions("80,10,10") == pytest.approx((0.8, 0.1, 0.1))


@pytest.mark.parametrize(
    ("n", "expected"), [(1, 1), (2, 2), (3, 1), (5, 3), (7, 5), (8, 6), (20, 16)]
)
def test_small_classes_are_stratified_into_every_split(n: int, expected: int) -> None:
    """The first user trial: 7 birds all went to train, and val had 3 of 5 class folders."""
    spec = SplitSpec(fractions=(0.8, 0.1, 0.1))
    data = items({"k": n})
    result = assign_splits(data, spec)
    counts = Counter(result.split.values())
    assert counts["train"] == expected
    if n >= 3:  # one image per split is possible: every split has one
        assert counts["val"] >= 1 and counts["test"] >= 1
        assert not result.missing
    else:  # too small: train keeps it, and the gap is reported
        assert result.missing == {"k": ("val", "test")}


def test_every_class_of_three_or_more_is_in_every_split_whatever_the_seed() -> None:
    data = items({f"c{n}": n for n in range(3, 30)})
    for seed in range(20):
        result = assign_splits(data, SplitSpec(seed=seed))
        assert not result.missing, seed
        for n in range(3, 30):
            counts = Counter(result.split[i.sha256] for i in data if i.labels == (f"c{n}",))
            # Within one image of the exact share (the minimum of one aside).
            assert abs(counts["test"] - max(1, n * 0.1)) <= 1, (seed, n, counts)
            assert abs(counts["val"] - max(1, n * 0.1)) <= 1, (seed, n, counts)


def test_a_split_without_a_share_gets_nothing_and_is_not_missing() -> None:
    result = assign_splits(items({"a": 10}), SplitSpec(fractions=(0.9, 0.0, 0.1)))
    assert Counter(result.split.values()) == {"train": 9, "test": 1}
    assert not result.missing


def test_the_rule_reads_as_words() -> None:
    assert SplitSpec().describe() == "80% train, 10% val, 10% test of each class (seed 0)"
    assert SplitSpec(val_per_class=50, test_per_class=0, seed=3).describe() == (
        "50 val and 0 test images per class, the rest train (seed 3)"
    )
