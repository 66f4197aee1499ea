"""ImageNet's dynamic consensus (Deng et al. 2009) on a model that knows who voted.

ImageNet kept asking for votes on an image until its confidence passed a
threshold or a cap was hit, so hard synsets ("Burmese cat") got more votes per
image than easy ones ("cat"). We keep the idea and decide from the posterior of
:mod:`.model` (skeptical newcomers, leave-one-out credit, evidence that must
agree). The stopping rule (:func:`decide`), per item after each vote:

* ``pending`` while an item of the synset's *initial subset* has fewer than
  ``initial_votes`` votes (capped by the annotators there are): the first items
  of every synset get a full round, the unbiased sample a curator can audit;
* a class is **decided** when its posterior reaches ``threshold`` *and* the
  votes themselves favour it (never on the prior alone);
* ``undecided`` when the cap is hit, no annotator who has not voted is left,
  or even the most reliable annotator agreeing on every remaining vote could
  not reach the threshold (more votes would not change the outcome);
* otherwise ``pending``: serve it again.

What the threshold means: the model's own probability that a decided item's
label is right, given the votes and the skills as measured *so far*. It is a
statement about the model, not a measured precision: skills estimated from a
few hundred votes are noisy, and items that fool most people fool the model
too, so the precision delivered on real crowds has landed below it (see
docs/consensus.md for the measured gap). An audit measures the real figure.

:meth:`DynamicConsensus.replay` plays votes in order exactly as the web app
decides them (:mod:`.live` is the same rule with its state in the database) and
refits the skills every ``refit_every`` votes, as a periodic ``synset consensus``
does; :meth:`DynamicConsensus.fit` is that refit on a finished vote set.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cache

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus.model import SkillState, template
from synset_builder.decision import Decision, of_answer


@cache
def _step(k: int, skill: float) -> float:
    t = template(k, skill)
    return math.log(t[0, 0]) - math.log(t[0, 1]) if k > 1 else 0.0


NO_VOTERS = "no annotator left who has not voted on it"
CAP = "vote cap reached"
HOPELESS = "more votes could not reach the threshold"


@dataclass(frozen=True)
class Verdict:
    """One item's state under the rule: ``word`` is ``decided``, ``undecided`` or
    ``pending``; ``top`` the most probable class; ``reason`` why it is undecided."""

    word: str
    top: int
    probs: tuple[float, ...]
    reason: str | None = None

    @property
    def decision(self) -> str:
        """The word a yes/no candidate's Consensus row stores: accepted, rejected,
        undecided or pending."""
        if self.word == "decided":
            return of_answer(self.top == 1)
        return self.word


def decide(
    probs: Sequence[float],
    evidence: Sequence[float],
    n_votes: int,
    *,
    config: DynamicConfig,
    initial_needed: int = 0,
    voters_left: int | None = None,
) -> Verdict:
    """The stopping rule for one item (see the module docstring).

    ``initial_needed``: votes an initial-subset item must have first (0 for
    others); ``voters_left``: annotators who could still vote on it (None:
    unknown, plenty).
    """
    k = len(probs)
    if k == 2:  # yes/no: what the web app decides on every submit, spelled out
        top = 1 if probs[1] > probs[0] else 0
        p: tuple[float, ...] = (float(probs[0]), float(probs[1]))
    else:
        top = max(range(k), key=lambda c: probs[c])
        p = tuple(float(v) for v in probs)
    out_of_voters = voters_left is not None and voters_left <= 0
    if n_votes == 0:
        return (
            Verdict(Decision.undecided, top, p, NO_VOTERS)
            if out_of_voters
            else Verdict(Decision.pending, top, p)
        )
    # The cap wins over the initial round: at ``max_votes`` below ``initial_votes``
    # an initial item would wait past the cap.
    if n_votes < min(initial_needed, config.max_votes) and not out_of_voters:
        return Verdict(Decision.pending, top, p)
    if k == 2:
        favoured = evidence[top] > evidence[1 - top]
    else:
        others = [evidence[c] for c in range(k) if c != top]
        favoured = not others or evidence[top] > max(others)
    if probs[top] >= config.threshold and favoured:
        return Verdict("decided", top, p)
    remaining = config.max_votes - n_votes
    if remaining <= 0:
        return Verdict(Decision.undecided, top, p, CAP)
    if voters_left is not None and voters_left <= 0:
        return Verdict(Decision.undecided, top, p, NO_VOTERS)
    if voters_left is not None:
        remaining = min(remaining, voters_left)
    odds = math.log(max(p[top], 1e-12)) - math.log(max(1.0 - p[top], 1e-12))
    if odds + remaining * _step(k, config.strong_skill) < _log_odds(config.threshold):
        return Verdict(Decision.undecided, top, p, HOPELESS)
    return Verdict(Decision.pending, top, p)


@cache
def _log_odds(p: float) -> float:
    return math.log(p / (1 - p))


def after_requeue(
    verdict: Verdict, fresh: int, config: DynamicConfig, *, nobody_left: bool
) -> Verdict:
    """A requeued item waits for ``requeue_votes`` fresh votes before it is decided
    again; if nobody is left to give them, it is a curator's call (undecided)."""
    if fresh >= config.requeue_votes:
        return verdict
    if nobody_left:
        return Verdict(Decision.undecided, verdict.top, verdict.probs, NO_VOTERS)
    return Verdict(Decision.pending, verdict.top, verdict.probs)


def credits(verdict: Verdict, config: DynamicConfig) -> bool:
    """A closed item sure enough of its answer to measure its voters by."""
    return verdict.word != Decision.pending and max(verdict.probs) >= config.credit_level


def evaluate_item(
    state: SkillState,
    group: Hashable,
    votes: Sequence[tuple[Hashable, int]],
    *,
    config: DynamicConfig,
    initial: bool,
    voters_left: int | None,
) -> Verdict:
    """The verdict on one item from its votes: what the web app, ``synset consensus``
    and the replay all call. Excluded annotators' votes do not count."""
    counted = [(w, label) for w, label in votes if w not in state.excluded]
    probs, evidence = state.posterior(group, counted)
    needed = 0
    if initial:
        # A small team: the initial round asks for as many votes as there are voters.
        needed = config.initial_votes
        if voters_left is not None:
            needed = min(needed, len(counted) + max(voters_left, 0))
    return decide(probs, evidence, len(counted), config=config, initial_needed=needed,
                  voters_left=voters_left)  # fmt: skip


__all__ = [
    "Verdict",
    "after_requeue",
    "credits",
    "decide",
    "evaluate_item",
    "template",
]
