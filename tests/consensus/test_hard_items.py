"""Items the crowd cannot tell (consensus/hard_items.py): hand-made votes for the
mixture, a simulated crowd for the learned share, and the web app deciding with the
share ``synset consensus`` wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import hard_items
from synset_builder.consensus.base import encode
from synset_builder.consensus.dawid_skene import group_indices
from synset_builder.consensus.live import after_votes
from synset_builder.consensus.model import SkillState
from synset_builder.consensus.replay import DynamicConsensus
from synset_builder.db.models import Consensus, Synset
from tests.consensus_data import cast, make_annotators, make_synset
from tests.crowd_sim import near_chance_binary, shuffled


def _state(hard: float) -> SkillState:
    state = SkillState(k=2, priors={"g": [0.6, 0.4]}, hard={"g": hard} if hard else {})
    for good in ("a", "b", "c", "d"):  # measured: right 90% of the time
        state.counts[good] = [[45.0, 5.0], [5.0, 45.0]]
    return state


def test_a_split_item_is_pulled_toward_the_prior_and_a_clear_one_is_not() -> None:
    split = [("a", 1), ("b", 0), ("c", 1), ("x", 1), ("y", 1)]  # x, y: newcomers
    clear = [("a", 1), ("b", 1), ("c", 1), ("d", 1)]
    plain, mixed = _state(0.0), _state(0.3)
    p_split, p_split_mixed = plain.posterior("g", split)[0][1], mixed.posterior("g", split)[0][1]
    assert p_split > 0.9 > p_split_mixed > 0.4  # decided at 0.9 without the model, not with it
    p_clear, p_clear_mixed = plain.posterior("g", clear)[0][1], mixed.posterior("g", clear)[0][1]
    assert p_clear_mixed > 0.95  # still passes the threshold
    assert p_split - p_split_mixed > 5 * (p_clear - p_clear_mixed)
    # The evidence (what "never on the prior alone" reads) is the votes', unmixed.
    assert plain.posterior("g", split)[1] == mixed.posterior("g", split)[1]
    assert mixed.posterior("g", [])[0] == pytest.approx([0.6, 0.4])
    # Four classes: the same mixture.
    four = SkillState(k=4, priors={"g": [0.25] * 4}, hard={"g": 0.3})
    probs = four.posterior("g", [("a", 0), ("b", 1), ("c", 0)])[0]
    assert sum(probs) == pytest.approx(1.0)
    assert (
        probs[0]
        < SkillState(k=4, priors={"g": [0.25] * 4}).posterior("g", [("a", 0), ("b", 1), ("c", 0)])[
            0
        ][0]
    )


def _crowd(seed: int) -> tuple[list, dict]:
    """Two groups, 80 items each, ten voters right 80% of the time; in group "h" a
    third of the items fool everyone (each voter guesses, whatever the truth)."""
    rng = np.random.default_rng(seed)
    votes, groups = [], {}
    for group in ("h", "o"):
        for i in range(80):
            item = f"{group}{i}"
            groups[item] = group
            truth = int(rng.random() < 0.5)
            fooled = group == "h" and i % 3 == 0
            for w in range(10):
                answer = int(rng.random() < 0.5) if fooled else truth ^ int(rng.random() > 0.8)
                votes.append((item, f"w{w}", answer))
    return votes, groups


@pytest.mark.parametrize("seed", [0, 1])
def test_the_refit_learns_a_larger_share_where_items_fool_the_crowd(seed: int) -> None:
    votes, groups = _crowd(seed)
    enc = encode(votes, classes=[0, 1])
    gidx = group_indices(enc.items, groups)
    names = {int(g): groups[item] for item, g in zip(enc.items, gidx, strict=True)}
    everything = np.ones(enc.n_items, dtype=np.int8)  # every item decided
    state = SkillState(k=2)
    hard_items.refit(state, enc, gold_idx=np.full(enc.n_items, -1), group_idx=gidx,
                     group_names=names, word=everything, n_iter=50)  # fmt: skip
    # Two EM steps on the share from Beta(1, 9)'s mean: a shrunk estimate (about 0.1
    # for a true third), but twice the ordinary group's.
    assert state.hard["h"] > 1.6 * state.hard["o"], state.hard
    # And item by item, the fooled ones look hard.
    log_conf, log_prior, share = hard_items.state_arrays(state, list(enc.workers), ["h", "o"])
    r = hard_items.item_hardness(
        log_conf, log_prior, share, (enc.item_idx, enc.worker_idx, enc.label_idx), gidx
    )
    fooled = np.array([item.startswith("h") and int(item[1:]) % 3 == 0 for item in enc.items])
    assert r[fooled].mean() > 4 * r[~fooled].mean()
    # No rounds: no shares, the plain refit.
    plain = SkillState(k=2)
    hard_items.refit(plain, enc, gold_idx=np.full(enc.n_items, -1), group_idx=gidx,
                     group_names=names, word=everything, n_iter=50, rounds=0)  # fmt: skip
    assert plain.hard == {}


def test_the_model_is_the_rules_default_and_can_be_turned_off() -> None:
    votes, _, classes = near_chance_binary(0)
    stream = shuffled(votes, 0)[:1500]
    on = DynamicConsensus(config=DynamicConfig()).replay(stream, classes=classes)
    off = DynamicConsensus(config=DynamicConfig(hard_items=False)).replay(stream, classes=classes)
    assert on.state_.hard and not off.state_.hard
    assert on.probas_ != off.probas_


def test_the_web_app_decides_with_the_share_synset_consensus_wrote(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    """The share is read from the synset's row on every submit (written there by the
    refit: ``test_consensus_model``'s streaming test holds it equal to the replay's)."""
    cfg = DynamicConfig(initial_size=0, max_votes=10)
    cand = make_synset(session, "n31", photos, tmp_path, 1)[0]
    sid = cand.synset_id
    people = make_annotators(session, ["ha", "hb", "hc"])
    synset = session.get(Synset, sid)
    synset.hard_share, synset.prior_yes = 0.4, 0.3
    session.flush()
    said = [(people[0], True), (people[1], True), (people[2], True)]
    for who, answer in said:
        cast(session, cand, who, answer)
        after_votes(session, [cand.id], config=cfg, voter=who.id)
    row = session.get(Consensus, cand.id)
    session.refresh(row)
    expected = SkillState(k=2, skill=cfg.newcomer_skill, shrink=cfg.shrink,
                          priors={sid: [0.7, 0.3]}, hard={sid: 0.4})  # fmt: skip
    plain = SkillState(k=2, skill=cfg.newcomer_skill, shrink=cfg.shrink, priors={sid: [0.7, 0.3]})
    for state in (expected, plain):
        for who in people:
            state.counts[who.id] = _counts(session, who.id)
    ballot = [(who.id, int(answer)) for who, answer in said]
    assert 0.5 < plain.posterior(sid, ballot)[0][1] < cfg.threshold  # still pending
    assert row.p_yes == pytest.approx(expected.posterior(sid, ballot)[0][1], abs=1e-9)
    assert abs(plain.posterior(sid, ballot)[0][1] - row.p_yes) > 0.01


def _counts(session: Session, annotator: int) -> list[list[float]]:
    from synset_builder.db.models import AnnotatorQuality

    q = session.get(AnnotatorQuality, annotator)
    if q is None:
        return [[0.0, 0.0], [0.0, 0.0]]
    session.refresh(q)
    return [[q.nn, q.ny], [q.yn, q.yy]]
