"""The aggregators on hand-made vote sets whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import METHODS, DawidSkene, DynamicConsensus, MajorityVote
from synset_builder.consensus.dynamic import CAP, HOPELESS, NO_VOTERS, decide
from synset_builder.consensus.model import SkillState

GOOD = ["g1", "g2", "g3", "g4"]


def spammed_votes() -> tuple[list[tuple[str, str, bool]], dict[str, bool]]:
    """Four careful annotators and two who always say yes.

    On the last six items only the two spammers and one careful annotator voted,
    so the majority says yes where the truth is no.
    """
    truth = {f"i{k}": k % 3 == 0 for k in range(30)}
    votes = []
    for k, (item, answer) in enumerate(truth.items()):
        voters = GOOD if k < 24 else [GOOD[k % 4]]
        for n, who in enumerate(voters):
            wrong = (k + n) % 11 == 0  # a few honest mistakes
            votes.append((item, who, answer != wrong))
        votes += [(item, "spam1", True), (item, "spam2", True)]
    return votes, truth


def test_majority_is_fooled_by_always_yes_annotators_but_the_models_are_not() -> None:
    votes, truth = spammed_votes()
    late_no = [i for k, i in enumerate(truth) if k >= 24 and not truth[i]]
    assert late_no, "the fixture needs negatives voted by spammers plus one careful annotator"
    majority = MajorityVote().fit(votes)
    assert all(majority.labels_[i] is True for i in late_no)
    ds = DawidSkene().fit(votes)
    assert ds.labels_ == truth
    assert ds.skills_["spam1"] < 0.7 < min(ds.skills_[g] for g in GOOD)
    dyn = DynamicConsensus().fit(votes)
    assert dyn.labels_ == truth
    assert set(dyn.excluded_) == {"spam1", "spam2"}  # always "yes" while the others vary
    assert max(dyn.skills_["spam1"], dyn.skills_["spam2"]) < min(dyn.skills_[g] for g in GOOD)


def test_a_single_vote_decides_its_item_in_every_method() -> None:
    votes = [("only", "w", "dog")]
    for name, make in METHODS.items():
        model = make(None).fit(votes)
        assert model.labels_ == {"only": "dog"}, name
        assert model.probas_["only"]["dog"] == pytest.approx(1.0), name


def test_majority_tie_keeps_half_and_breaks_toward_the_commoner_label() -> None:
    votes = [("a", "w1", True), ("a", "w2", False), ("b", "w1", False), ("c", "w2", False)]
    model = MajorityVote().fit(votes)
    assert model.probas_["a"][True] == 0.5
    assert model.labels_["a"] is False  # "no" is the commoner answer overall


def test_gold_answers_are_kept_and_anchor_the_confusions() -> None:
    # w_bad answers the opposite of the truth; gold items reveal it.
    truth = {f"i{k}": k % 2 == 0 for k in range(12)}
    votes = [(i, "w_bad", not t) for i, t in truth.items()]
    votes += [(i, "w_ok", t) for i, t in list(truth.items())[:6]]
    gold = {i: t for i, t in list(truth.items())[:6]}
    for model in (DawidSkene().fit(votes, gold=gold), DynamicConsensus().fit(votes, gold=gold)):
        assert model.labels_ == truth  # the later items only have w_bad's flipped votes
    assert MajorityVote().fit(votes, gold=gold).labels_["i11"] != truth["i11"]


def test_multi_class_labels() -> None:
    """Three honest annotators who slip now and then (answering "dog"), one who always
    says "dog": ties go wrong for majority, the confusion models see through them."""
    classes = ["cat", "dog", "bird"]
    truth = {f"i{k}": classes[k % 3] for k in range(30)}
    votes = []
    for k, (item, answer) in enumerate(truth.items()):
        for n, who in enumerate(["a", "b", "c"]):
            votes.append((item, who, "dog" if k % 5 == n else answer))
        votes.append((item, "confuser", "dog"))
    majority = MajorityVote().fit(votes)
    assert sum(majority.labels_[i] == t for i, t in truth.items()) < len(truth) * 0.7
    for model in (DawidSkene().fit(votes), DynamicConsensus().fit(votes)):
        assert set(model.probas_["i0"]) == set(classes)
        assert model.labels_ == truth


def test_dynamic_replay_stops_items_once_decided() -> None:
    votes, truth = spammed_votes()
    # Serve six more rounds from the careful annotators so there is something to save.
    more = [(i, f"g{n}", t) for n in range(5, 11) for i, t in truth.items()]
    cfg = DynamicConfig(initial_size=3, initial_votes=4, max_votes=10)
    replay = DynamicConsensus(config=cfg).replay(votes + more)
    total = len(votes) + len(more)
    assert sum(replay.used_.values()) < total * 0.8
    assert replay.labels_ == truth


def test_decision_rule() -> None:
    cfg = DynamicConfig(threshold=0.95, initial_votes=10, max_votes=5)
    even = [0.0, 0.0]

    def word(p_yes: float, n: int, evidence: list[float] = even, **kw: object) -> str:
        v = decide([1 - p_yes, p_yes], evidence, n, config=cfg, **kw)
        return v.word if v.word != "decided" else ("accepted" if v.top else "rejected")

    assert word(0.99, 3, [0.0, 3.0]) == "accepted"
    assert word(0.01, 3, [3.0, 0.0]) == "rejected"
    assert word(0.70, 3) == "pending"
    assert word(0.70, 5) == "undecided"
    assert word(0.99, 4, [0.0, 3.0], initial_needed=10) == "pending"  # initial items wait
    # ... for their round, but never past the cap (here 5): an initial item used to
    # wait for 10 votes whatever --max-votes said.
    assert word(0.99, 5, [0.0, 3.0], initial_needed=10) == "accepted"
    assert word(0.5, 0) == "pending"
    # Never on the prior alone: a 0.99 from a skewed prior with votes against it waits.
    assert word(0.99, 3, [1.0, 0.0]) == "pending"
    # Nobody left to vote: decided if it can be, else undecided with the reason.
    assert decide([0.3, 0.7], even, 3, config=cfg, voters_left=0).reason == NO_VOTERS
    assert word(0.99, 2, [0.0, 3.0], initial_needed=10, voters_left=0) == "accepted"
    assert decide([0.3, 0.7], even, 5, config=cfg).reason == CAP
    # One vote left and far from the threshold: more votes cannot settle it.
    assert decide([0.5, 0.5], even, 4, config=cfg).reason == HOPELESS
    with pytest.raises(ValueError):
        DynamicConfig(threshold=0.4)


def test_posterior_weighs_who_voted() -> None:
    state = SkillState(k=2)
    state.gold_counts["expert"] = np.array([[40.0, 1.0], [1.0, 40.0]])
    one_expert, _ = state.posterior(None, [("expert", 1)])
    two_novices, _ = state.posterior(None, [("new1", 1), ("new2", 1)])
    assert one_expert[1] > 0.95 > two_novices[1]
    # An always-yes voter (every truth answered yes) carries no information.
    state.counts["yes-man"] = np.array([[0.0, 500.0], [0.0, 500.0]])
    alone, _ = state.posterior("g", [("yes-man", 1)])
    assert alone[1] == pytest.approx(0.5, abs=0.01)
