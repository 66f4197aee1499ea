"""Hard items: a share of each synset's items that the crowd cannot tell, learned at
each refit, so they neither decide on noise nor teach the refit who is reliable.

The skill model (:mod:`.model`) assumes every item is *ordinary*: each vote is the
voter's usual confusion applied to the item's truth. Real crowds also meet items
nobody can tell (a tiny, blurred or ambiguous photo). On those the votes are each
voter's usual answers, whatever the truth: a near-chance crowd that leans "yes"
says "yes", and a model that reads that as evidence accepts on a lean. So the
model is a mixture::

    P(votes) = (1 - h) · Σ_c prior(c) Π_v P(v | c)      (ordinary)
             +      h  · Π_v Σ_c prior(c) P(v | c)      (hard: each vote alone)

with ``h`` the synset's share of hard items. :meth:`.model.SkillState.posterior`
mixes the class posterior toward the prior by ``r = P(hard | votes)``, so a
hard-looking item needs more votes before it passes the threshold.

The refit (:func:`refit`, and :mod:`.chunked_refit` on the recompute's path)
learns ``h`` and who is reliable together: after the plain refit (decided items
measure the voters, as without this model), :data:`ROUNDS` rounds each compute
every closed item's ``r`` (:func:`item_hardness`), set each synset's share to
their mean (with a Beta(:data:`H_PRIOR`) pseudo-count, from items with at least
:data:`MIN_VOTES` votes), and refit again with every *closed* item (decided, or
stopped undecided with :data:`UNDECIDED_VOTES` votes) weighted by ``1 - r``.
Measuring the voters only on decided items is a sample biased toward items the
crowd agreed on; closed items weighted by how ordinary they look are not.
Measured on simulated crowds with many near-chance workers (docs/benchmarks.md),
the model's gain needs both the mixture and these rounds; one round was not enough.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np

from synset_builder.consensus.base import Encoded
from synset_builder.consensus.model import SkillState
from synset_builder.decision import Decision

H_PRIOR = (1.0, 9.0)  # Beta pseudo-counts (hard, ordinary) on a synset's share
ROUNDS = 2  # refits weighted by how ordinary items look, after the plain one
MIN_VOTES = 3  # an item with fewer votes looks neither hard nor ordinary
START_SHARE = 0.1  # the share the first round assumes: H_PRIOR's mean
# An undecided item measures its voters only with this many votes: each voter is
# credited against the *other* votes, and with two others a 2-1 split credits the
# majority at chance (one agrees, one does not), so a careful team of three would
# look like a crowd of coin-flippers.
UNDECIDED_VOTES = 5
# How a replay left each item, as the refits read it (``word`` arrays).
WORDS = {Decision.pending: 0, "decided": 1}  # anything else (undecided): 2


def weights(r: np.ndarray, word: np.ndarray, n_votes: np.ndarray) -> np.ndarray:
    """How much each item measures the voters in a hard-items round: ``1 - r`` for a
    decided item and an undecided one with :data:`UNDECIDED_VOTES` votes, else 0."""
    counts = (word == 1) | ((word == 2) & (n_votes >= UNDECIDED_VOTES))
    return np.where(counts, 1.0 - r, 0.0)


def item_hardness(
    log_conf: np.ndarray,
    log_prior: np.ndarray,
    share: np.ndarray,
    vote: tuple[np.ndarray, np.ndarray, np.ndarray],
    group: np.ndarray,
) -> np.ndarray:
    """Per item, P(hard | its votes).

    ``log_conf``: per voter, log P(answer | truth) (voters x k x k); ``log_prior``
    and ``share``: per group; ``vote``: per vote its item, voter and answer (an
    item's votes in any order); ``group``: per item its group index.
    """
    item, worker, label = vote
    per_vote = log_conf[worker, :, label]  # votes x k: log P(answer | truth = c)
    prior = log_prior[group]  # items x k
    evidence = np.zeros(prior.shape)
    np.add.at(evidence, item, per_vote)
    log_hard = np.zeros(len(group))
    np.add.at(log_hard, item, np.logaddexp.reduce(prior[item] + per_vote, axis=1))
    log_plain = np.logaddexp.reduce(prior + evidence, axis=1)
    h = share[group]  # > 0: a learned share has H_PRIOR's pseudo-count
    odds = np.log(h) + log_hard - np.log1p(-h) - log_plain
    return 1.0 / (1.0 + np.exp(-odds))


def assess(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    vote: tuple[np.ndarray, np.ndarray, np.ndarray],
    group: np.ndarray,
    word: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One round on a batch of whole items (every item, or one chunk of them): per
    item P(hard), whether it counts toward its group's share (closed, with
    :data:`MIN_VOTES` votes), and its weight in the refit (:func:`weights`).
    ``arrays``: :func:`state_arrays`'."""
    n_votes = np.bincount(vote[0], minlength=len(group))
    eligible = (word > 0) & (n_votes >= MIN_VOTES)
    r = np.where(eligible, item_hardness(*arrays, vote, group), 0.0)
    return r, eligible, weights(r, word, n_votes)


def state_arrays(
    state: SkillState, workers: list[Hashable], groups: list[Hashable]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The state's log confusions (per voter), log priors and shares (per group), as
    :func:`item_hardness` reads them; a group never measured gets :data:`START_SHARE`."""
    uniform = [1.0 / state.k] * state.k
    log_conf = np.log(np.array([state.confusion(w) for w in workers]).reshape(-1, state.k, state.k))
    log_prior = np.log(np.array([state.priors.get(g) or uniform for g in groups]))
    share = np.array([state.hard.get(g, START_SHARE) for g in groups], dtype=float)
    return log_conf, log_prior.reshape(-1, state.k), share


class Shares:
    """Each group's share of hard items, summed over items (any number of batches)."""

    def __init__(self, n_groups: int) -> None:
        self.hard = np.full(n_groups, H_PRIOR[0])
        self.seen = np.full(n_groups, H_PRIOR[0] + H_PRIOR[1])

    def add(self, r: np.ndarray, eligible: np.ndarray, group: np.ndarray) -> None:
        np.add.at(self.hard, group[eligible], r[eligible])
        np.add.at(self.seen, group[eligible], 1.0)

    def into(self, state: SkillState, names: list[Hashable]) -> None:
        """Set the state's shares: groups without an eligible item get none (0)."""
        counted = np.flatnonzero(self.seen > H_PRIOR[0] + H_PRIOR[1])
        state.hard = {names[g]: float(self.hard[g] / self.seen[g]) for g in counted}


def refit(
    state: SkillState,
    enc: Encoded,
    *,
    gold_idx: np.ndarray,
    group_idx: np.ndarray,
    group_names: Mapping[int, Hashable],
    word: np.ndarray,
    n_iter: int,
    rounds: int = ROUNDS,
) -> None:
    """:meth:`.model.SkillState.refit` on the decided items (``word``: per item, as
    :data:`WORDS`), then ``rounds`` rounds that learn each group's hard share and
    refit on the closed items weighted by how ordinary they look (:func:`weights`;
    ``rounds=0``: the plain refit, no hard items)."""
    state.hard = {}
    em = state.refit(enc, gold_idx=gold_idx, group_idx=group_idx, group_names=group_names,
                     calibration=word == 1, n_iter=n_iter)  # fmt: skip
    names = [group_names[g] for g in range(int(group_idx.max()) + 1 if len(group_idx) else 0)]
    vote = (enc.item_idx, enc.worker_idx, enc.label_idx)
    for _ in range(rounds):
        r, eligible, weight = assess(
            state_arrays(state, list(enc.workers), names), vote, group_idx, word
        )
        shares = Shares(len(names))
        shares.add(r, eligible, group_idx)
        shares.into(state, names)
        em = state.refit(enc, gold_idx=gold_idx, group_idx=group_idx, group_names=group_names,
                         calibration=weight, n_iter=n_iter, warm=em)  # fmt: skip
