"""ImageNet's dynamic consensus (Deng et al. 2009), with a skill-weighted posterior.

ImageNet served a random *initial subset* of each synset's candidates until each
had 10 votes, built from them a table ``P(good | k of n said yes)``, and served
every other candidate until that confidence passed a threshold or a vote cap was
hit. Hard synsets ("Burmese cat") thus get more votes per image than easy ones
("cat"), which is how it reached 99.7% precision without ten votes everywhere.

The estimator chosen here replaces the count table with a Bayesian posterior
that knows *who* voted:

    P(truth = k | votes) ∝ prior_synset(k) · Π_votes confusion_annotator(k, vote)

* ``prior_synset`` is the synset's share of positives (EM, per synset; the live
  path takes it from the synset's fully voted initial subset).
* ``confusion_annotator`` comes from EM over the votes (Dawid-Skene) with gold
  items clamped to their answers, **shrunk toward a symmetric pool confusion**
  with ``shrink`` pseudo-votes, so a newcomer counts as an average annotator and
  a proven one by their record.
* Skills are **calibrated on the initial subsets** (plus gold): ImageNet votes
  those items to the full count whatever happens, so they are an unbiased
  sample of how often each annotator is right. Items stopped early because the
  first votes agreed, or run to the cap because they disagreed, are not: fitting
  skills on them made the posterior overconfident (precision 0.90 at a 0.95
  threshold in ``bench/consensus.py``; about 0.94 calibrated this way).
* Optionally (``temper=True``) each synset gets one temperature applied to every
  annotator's confusion, its difficulty: the same person is less reliable on
  "Burmese cat" than on "cat". One number per synset is what an initial subset
  of 100 votes can support. It buys recall at the same precision in the
  benchmark but costs a grid search per EM step, and the live path does not
  store temperatures, so it is off by default.

Why not the plain count table: with weak annotators (accuracy 0.55-0.7) and a
few spammers, "4 of 5 said yes" means very different things depending on whether
the four were spammers; the count table averages over them and needs more votes
for the same precision. Why not a full confusion per annotator and synset: with
10 initial items per synset there are about three votes per pair. Multi-class
works the same way: stop when the top class passes the threshold.

The threshold is a posterior probability, so the precision of the accepted set
lands near it: ImageNet-grade precision (99.5%+) needs ``threshold=0.995``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from synset_builder.consensus.base import VoteRow, encode, labels_from, probas_dict
from synset_builder.consensus.confusion_em import fit_em
from synset_builder.consensus.dawid_skene import gold_indices, group_indices


@dataclass(frozen=True)
class DynamicConfig:
    """The stopping rule: thresholds and vote budgets (ImageNet's defaults)."""

    threshold: float = 0.95
    initial_size: int = 10
    initial_votes: int = 10
    max_votes: int = 10
    # Pseudo-votes pulling each annotator's confusion toward the pooled one.
    shrink: float = 10.0
    # Fit one temperature per synset (its difficulty) on top of annotator confusions.
    temper: bool = False
    alpha: float = 0.5
    # Fresh votes a requeued candidate needs before it may be decided again.
    requeue_votes: int = 3

    def __post_init__(self) -> None:
        if not 0.5 < self.threshold < 1.0:
            raise ValueError(f"threshold must lie in (0.5, 1), not {self.threshold}")
        if self.max_votes < 1 or self.initial_votes < 1 or self.initial_size < 0:
            raise ValueError("vote budgets must be positive")


def decide(top: float, n_votes: int, *, initial: bool, config: DynamicConfig) -> str:
    """Binary decision word for an item whose ``P(yes)`` is ``top``.

    ``pending``: still collecting votes; ``undecided``: the cap was hit first.
    """
    if n_votes == 0 or (initial and n_votes < config.initial_votes):
        return "pending"
    if top >= config.threshold:
        return "accepted"
    if top <= 1.0 - config.threshold:
        return "rejected"
    cap = max(config.max_votes, config.initial_votes if initial else 0)
    return "undecided" if n_votes >= cap else "pending"


def binary_posterior(prior_yes: float, votes: Sequence[tuple[bool, float, float]]) -> float:
    """``P(yes)`` from votes given as (answer, sensitivity, specificity) of the voter.

    Plain ``math`` on floats: it runs for every item of every web submit, where
    numpy's per-call overhead on scalars cost more than the arithmetic.
    """
    prior_yes = min(max(prior_yes, 1e-6), 1 - 1e-6)
    log_odds = math.log(prior_yes) - math.log1p(-prior_yes)
    for answer, sens, spec in votes:
        sens = min(max(sens, 1e-6), 1 - 1e-6)
        spec = min(max(spec, 1e-6), 1 - 1e-6)
        if answer:
            log_odds += math.log(sens) - math.log1p(-spec)
        else:
            log_odds += math.log1p(-sens) - math.log(spec)
    # Written so that exp() never overflows, whatever the sign of the log-odds.
    if log_odds >= 0:
        return 1.0 / (1.0 + math.exp(-log_odds))
    odds = math.exp(log_odds)
    return odds / (1.0 + odds)


@dataclass
class DynamicConsensus:
    """Skill-weighted posterior with ImageNet's stopping rule.

    ``fit`` scores a finished vote set (``decided_`` says which items passed the
    threshold); ``replay`` plays votes in arrival order, dropping the votes an
    item would not have been served after it was decided (``used_``).
    """

    config: DynamicConfig = field(default_factory=DynamicConfig)
    n_iter: int = 100
    refit_every: int = 200
    loo: bool = False
    labels_: dict[Hashable, Hashable] = field(default_factory=dict, init=False)
    probas_: dict[Hashable, dict[Hashable, float]] = field(default_factory=dict, init=False)
    skills_: dict[Hashable, float] = field(default_factory=dict, init=False)
    confusions_: dict[Hashable, np.ndarray] = field(default_factory=dict, init=False)
    temperatures_: dict[Hashable, float] = field(default_factory=dict, init=False)
    priors_: dict[Hashable, np.ndarray] = field(default_factory=dict, init=False)
    pooled_: np.ndarray | None = field(default=None, init=False)
    decided_: dict[Hashable, bool] = field(default_factory=dict, init=False)
    used_: dict[Hashable, int] = field(default_factory=dict, init=False)

    def fit(
        self,
        votes: Sequence[VoteRow],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        classes: Sequence[Hashable] | None = None,
        calibration: Collection[Hashable] | None = None,
    ) -> Self:
        """Fit skills and posteriors; ``calibration`` items (initial subsets) measure skill."""
        gold = gold or {}
        enc = encode(votes, classes=classes)
        gidx = group_indices(enc.items, groups)
        calib = None
        if calibration is not None:
            wanted = set(calibration)
            calib = np.array([item in wanted for item in enc.items], dtype=bool)
            if not calib[enc.item_idx].any():  # nothing calibrated yet: use every vote
                calib = None
        res = fit_em(
            enc,
            gold_idx=gold_indices(enc.items, enc.classes, gold),
            group_idx=gidx,
            alpha=self.config.alpha,
            shrink=self.config.shrink,
            temper=self.config.temper,
            loo=self.loo,
            calibration=calib,
            n_iter=self.n_iter,
        )
        self.labels_ = labels_from(enc, res.probas)
        self.probas_ = probas_dict(enc, res.probas)
        self.confusions_ = {w: res.confusion[j] for j, w in enumerate(enc.workers)}
        prior = res.priors.mean(axis=0)
        diag = np.einsum("wkk->wk", res.confusion)
        self.skills_ = {w: float(diag[j] @ prior) for j, w in enumerate(enc.workers)}
        names = {}
        for i, item in enumerate(enc.items):
            names.setdefault(gidx[i], (groups or {}).get(item))
        self.priors_ = {names[g]: res.priors[g] for g in names}
        self.temperatures_ = {names[g]: float(res.temperatures[g]) for g in names}
        k = enc.n_classes
        pooled = np.full((k, k), self.config.alpha)
        if self.confusions_:
            pooled = np.mean(list(self.confusions_.values()), axis=0)
        self.pooled_ = pooled / pooled.sum(axis=1, keepdims=True)
        self.decided_ = {
            item: bool(res.probas[i].max() >= self.config.threshold)
            for i, item in enumerate(enc.items)
        }
        self.used_ = {}
        for item, _, _ in votes:
            self.used_[item] = self.used_.get(item, 0) + 1
        return self

    def _posterior(self, group: Hashable, item_votes: list[tuple[Hashable, int]], k: int):
        prior = self.priors_.get(group)
        log_post = np.log(prior if prior is not None else np.full(k, 1.0 / k))
        pooled = self.pooled_ if self.pooled_ is not None else np.full((k, k), 1.0 / k)
        temp = self.temperatures_.get(group, 1.0)
        for worker, label in item_votes:
            log_rows = np.log(self.confusions_.get(worker, pooled)) * temp
            log_rows -= np.logaddexp.reduce(log_rows, axis=1, keepdims=True)
            log_post = log_post + log_rows[:, label]
        post = np.exp(log_post - log_post.max())
        return post / post.sum()

    def replay(
        self,
        votes: Sequence[VoteRow],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        classes: Sequence[Hashable] | None = None,
    ) -> Self:
        """Serve votes in file order; skip an item's later votes once it is decided.

        Skills and priors are refitted on the votes taken so far every
        ``refit_every`` votes, as ``synset consensus`` would be run now and then
        while the web app keeps deciding items between runs.
        """
        cfg = self.config
        all_classes = list(classes) if classes else list(dict.fromkeys(v[2] for v in votes))
        cix = {c: j for j, c in enumerate(all_classes)}
        k = len(all_classes)
        groups = groups or {}
        initial: dict[Hashable, set[Hashable]] = {}
        taken: list[VoteRow] = []
        per_item: dict[Hashable, list[tuple[Hashable, int]]] = {}
        done: set[Hashable] = set()
        self.priors_, self.confusions_, self.pooled_ = {}, {}, None
        self.temperatures_ = {}
        since_fit = 0
        calib_items: set[Hashable] = set()
        for item, worker, label in votes:
            group = groups.get(item)
            members = initial.setdefault(group, set())
            if item not in per_item and len(members) < cfg.initial_size:
                members.add(item)
                calib_items.add(item)
            item_votes = per_item.setdefault(item, [])
            if item in done:
                continue
            item_votes.append((worker, cix[label]))
            taken.append((item, worker, label))
            since_fit += 1
            if since_fit >= self.refit_every:
                self.fit(
                    taken, gold=gold, groups=groups, classes=all_classes, calibration=calib_items
                )
                since_fit = 0
            n = len(item_votes)
            is_initial = item in members
            cap = max(cfg.max_votes, cfg.initial_votes if is_initial else 0)
            if n >= cap:
                done.add(item)
                continue
            if is_initial and n < cfg.initial_votes:
                continue
            if self._posterior(group, item_votes, k).max() >= cfg.threshold:
                done.add(item)
        self.fit(taken, gold=gold, groups=groups, classes=all_classes, calibration=calib_items)
        self.used_ = {item: len(v) for item, v in per_item.items()}
        return self
