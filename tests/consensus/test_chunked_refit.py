"""The refit in chunks gives the floats the refit over every vote at once gives, with
its arrays in memory or spilled to scratch files; spilled, its memory does not grow
with the number of synsets."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from synset_builder.consensus import hard_items
from synset_builder.consensus.model import SkillState
from synset_builder.consensus.synset_pass import FitArrays


class _Item:
    def __init__(self, votes: list[tuple[int, int]], decided: bool, closed: bool = True) -> None:
        self.votes = votes
        self.word = "decided" if decided else "undecided" if closed else "pending"


def project(
    seed: int, folder: Path | None = None
) -> tuple[FitArrays, dict[int, bool], dict[int, str]]:
    """Groups of items with 1-6 votes from 15 voters of mixed skill, some gold items,
    two voters excluded, some items undecided; spilled to ``folder`` if given."""
    rng = np.random.default_rng(seed)
    fit = FitArrays(folder)
    gold: dict[int, bool] = {}
    skill = rng.uniform(0.45, 0.97, size=15)
    cid = 1000
    for group in range(12):
        items = {}
        for _ in range(int(rng.integers(20, 90))):
            cid += int(rng.integers(1, 4))
            truth = bool(rng.random() < 0.2 + 0.05 * group)
            voters = rng.choice(15, size=int(rng.integers(1, 7)), replace=False)
            votes = [(100 + int(w), int(truth == (rng.random() < skill[w]))) for w in voters]
            u = rng.random()
            items[cid] = _Item(votes, decided=bool(u < 0.6), closed=bool(u < 0.8))
            if rng.random() < 0.05:
                gold[cid] = truth
        fit.add(500 + group, items)
    return fit, gold, {103: "spam", 111: "spam"}


def at_once(
    fit: FitArrays, gold: dict[int, bool], state: SkillState, n_iter: int, rounds: int
) -> None:
    """What ``FitArrays.refit`` computes, over every vote at once (the replay's refit)."""
    enc, groups, word = fit.kept(state.excluded)
    names_of, gidx = np.unique(groups, return_inverse=True)
    gold_idx = np.array([int(gold[c]) if c in gold else -1 for c in enc.items], dtype=np.int64)
    hard_items.refit(state, enc, gold_idx=gold_idx, group_idx=gidx.astype(np.int64),
                     group_names={g: int(s) for g, s in enumerate(names_of)},
                     word=word, n_iter=n_iter,
                     rounds=rounds)  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("chunk_votes", [1, 37, 500, 10**7])
@pytest.mark.parametrize("spilled", [False, True], ids=["memory", "spilled"])
@pytest.mark.parametrize("rounds", [0, 2], ids=["plain", "hard-items"])
def test_chunked_refit_is_the_same_floats(
    seed: int, chunk_votes: int, spilled: bool, rounds: int, tmp_path: Path
) -> None:
    fit, gold, excluded = project(seed, tmp_path if spilled else None)
    whole, chunked = SkillState(k=2), SkillState(k=2)
    for state in (whole, chunked):
        state.excluded = dict(excluded)
    at_once(fit, gold, whole, n_iter=50, rounds=rounds)
    fit.refit(chunked, gold, n_iter=50, chunk_votes=chunk_votes, rounds=rounds)
    assert chunked.counts == whole.counts  # exact: no tolerance
    assert chunked.priors == whole.priors
    assert chunked.hard == whole.hard
    assert (len(whole.hard) == 12) == (rounds > 0), "every group should learn a share"
    assert set(whole.counts).isdisjoint(excluded)
    assert len({round(p[1], 3) for p in whole.priors.values()}) > 3, "priors should differ"


def test_spilled_arrays_are_files_and_the_chunks_go_away(tmp_path: Path) -> None:
    fit, gold, excluded = project(3, tmp_path)
    votes, items = fit.n_votes, len(fit.item_ids)
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert sizes == {
        "item_ids.bin": 8 * items, "item_group.bin": 8 * items, "word.bin": items,
        "vote_item.bin": 8 * votes, "vote_worker.bin": 8 * votes, "vote_label.bin": votes,
    }  # fmt: skip
    state = SkillState(k=2)
    state.excluded = dict(excluded)
    fit.refit(state, gold, n_iter=5, chunk_votes=50)
    assert state.counts, "the refit should have fitted someone"
    assert "chunks.bin" not in {p.name for p in tmp_path.iterdir()}


def _peak_bytes(groups: int, folder: Path | None) -> int:
    """Peak traced memory of a replay's appends and the refit over ``groups`` synsets of
    the same size (300 items of 3 votes from 30 voters), the items of one synset
    alive at a time as in the recompute."""
    rng = np.random.default_rng(7)
    tracemalloc.start()
    try:
        fit = FitArrays(folder)
        for group in range(groups):
            items = {}
            for k in range(300):
                truth = int(rng.random() < 0.4)
                votes = [(int(w), truth if rng.random() < 0.85 else 1 - truth)
                         for w in rng.choice(30, size=3, replace=False)]  # fmt: skip
                items[group * 1000 + k] = _Item(votes, decided=k % 3 > 0)
            fit.add(group, items)
            del items
        state = SkillState(k=2)
        fit.refit(state, {}, n_iter=3, chunk_votes=900)
        fit.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_spilled_refit_memory_does_not_grow_with_the_synsets(tmp_path: Path) -> None:
    """Ten times the synsets: in memory the peak grows by the arrays (about 30 bytes a
    vote, 2 MB here); spilled it stays within what the per-synset priors and a few
    lists of indices take (under 0.2 MB)."""
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    in_memory = _peak_bytes(100, None) - _peak_bytes(10, None)
    spilled = _peak_bytes(100, large) - _peak_bytes(10, small)
    assert in_memory > 1_500_000, in_memory
    assert spilled < 200_000, spilled
