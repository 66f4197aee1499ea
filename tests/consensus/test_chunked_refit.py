"""The refit in chunks gives the floats the refit over every vote at once gives."""

from __future__ import annotations

import numpy as np
import pytest

from synset_builder.consensus.model import SkillState
from synset_builder.consensus.synset_pass import FitArrays


class _Item:
    def __init__(self, votes: list[tuple[int, int]], decided: bool) -> None:
        self.votes = votes
        self.word = "decided" if decided else "pending"


def project(seed: int) -> tuple[FitArrays, dict[int, bool], dict[int, str]]:
    """Groups of items with 1-6 votes from 15 voters of mixed skill, some gold items,
    two voters excluded, some items undecided."""
    rng = np.random.default_rng(seed)
    fit = FitArrays()
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
            items[cid] = _Item(votes, decided=bool(rng.random() < 0.7))
            if rng.random() < 0.05:
                gold[cid] = truth
        fit.add(500 + group, items)
    return fit, gold, {103: "spam", 111: "spam"}


def at_once(fit: FitArrays, gold: dict[int, bool], state: SkillState, n_iter: int) -> None:
    """What ``FitArrays.refit`` did before it worked in chunks."""
    enc, groups, decided = fit.kept(state.excluded)
    names_of, gidx = np.unique(groups, return_inverse=True)
    gold_idx = np.array([int(gold[c]) if c in gold else -1 for c in enc.items], dtype=np.int64)
    state.refit(enc, gold_idx=gold_idx, group_idx=gidx.astype(np.int64),
                group_names={g: int(s) for g, s in enumerate(names_of)},
                calibration=decided, n_iter=n_iter)  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("chunk_votes", [1, 37, 500, 10**7])
def test_chunked_refit_is_the_same_floats(seed: int, chunk_votes: int) -> None:
    fit, gold, excluded = project(seed)
    whole, chunked = SkillState(k=2), SkillState(k=2)
    for state in (whole, chunked):
        state.excluded = dict(excluded)
    at_once(fit, gold, whole, n_iter=50)
    fit.refit(chunked, gold, n_iter=50, chunk_votes=chunk_votes)
    assert chunked.counts == whole.counts  # exact: no tolerance
    assert chunked.priors == whole.priors
    assert set(whole.counts).isdisjoint(excluded)
    assert len({round(p[1], 3) for p in whole.priors.values()}) > 3, "priors should differ"
