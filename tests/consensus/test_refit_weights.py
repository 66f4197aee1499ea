"""The refit's calibration as weights: a boolean is weights of 0 and 1, to the bit.

Why: a model that counts an item in part (how ordinary it looks) must use the
same refit as the product's decisions, not a copy of its loop; and the boolean
path every decision takes today must not move by a single float.
"""

from __future__ import annotations

import copy

import numpy as np

from synset_builder.consensus.dawid_skene import gold_indices
from synset_builder.consensus.model import SkillState
from synset_builder.consensus.replay import DynamicConsensus
from tests.crowd_sim import fine_grained, near_chance_binary, shuffled


def _midway(gen) -> tuple[SkillState, tuple, np.ndarray]:  # noqa: ANN001 - a crowd generator
    votes, _, classes = gen(1)
    played = DynamicConsensus().replay(shuffled(votes, 0)[:1500], classes=classes)
    enc, gidx, names = played.encoded()
    gold = gold_indices(enc.items, enc.classes, {})
    assert played.state_ is not None
    return played.state_, (enc, gidx, names), gold


def _refit(state: SkillState, encoded: tuple, gold: np.ndarray, calibration: np.ndarray):  # noqa: ANN202
    enc, gidx, names = encoded
    out = copy.deepcopy(state)
    probas = out.refit(enc, gold_idx=gold, group_idx=gidx, group_names=names,
                       calibration=calibration, n_iter=50).probas  # fmt: skip
    counts = np.array([out.counts[w] for w in enc.workers])
    return counts, out.priors, probas


def test_a_boolean_calibration_is_weights_of_zero_and_one_to_the_bit() -> None:
    for gen in (near_chance_binary, fine_grained):
        state, encoded, gold = _midway(gen)
        decided = np.random.default_rng(3).random(encoded[0].n_items) < 0.6
        flags = _refit(state, encoded, gold, decided)
        weights = _refit(state, encoded, gold, decided.astype(float))
        assert np.array_equal(flags[0], weights[0])
        assert flags[1] == weights[1]
        assert np.array_equal(flags[2], weights[2])


def test_a_weight_counts_an_item_in_part() -> None:
    state, encoded, gold = _midway(near_chance_binary)
    enc = encoded[0]
    decided = np.random.default_rng(3).random(enc.n_items) < 0.6
    none, full = _refit(state, encoded, gold, decided), _refit(state, encoded, gold, decided | True)
    half = _refit(state, encoded, gold, np.where(decided, 1.0, 0.5))
    nearly_none = _refit(state, encoded, gold, np.where(decided, 1.0, 1e-9))
    # every vote on a half-weighted item is credited: more than with weight 0, less than 1
    assert none[0].sum() < half[0].sum() < full[0].sum()
    assert np.allclose(nearly_none[0], none[0], atol=1e-6)
    assert half[1] != none[1]  # the priors move with the confusions the weights change
