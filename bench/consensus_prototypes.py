"""Models of the votes tried for issue 18's order spread, not in the product.

Why here and not in ``synset_builder``: each was measured on simulated crowds
(``bench/consensus_levers.py``) and none meets the spread target alone; they are
kept so the figures in docs/consensus.md can be reproduced and the next attempt
starts from them. Each is installed by patching the product's classes inside a
benchmark process (:func:`install`), so the rest of the rule is the product's.

* ``tempered``: the votes' evidence divided by ``1 + rho (n - 1)`` for ``n``
  votes, the design effect of errors correlated within an item.
* ``oracle``: every annotator's confusion taken from Dawid-Skene over *every*
  vote of the file, fixed, no refits: skills no real run can know, the bound on
  what better skill estimates could buy.
* (``hard``, ``mixonly``, ``hardstop``, ``mixstop``, ``hard1``, measured here until
  the hard-items model went into the product, :mod:`synset_builder.consensus.
  hard_items`; their code is in this file's history at commit bb87719.)
* ``firstm``: every item's first ``FIRST_M`` votes measure the voters, pending
  items included: votes taken before the rule could stop, so not selected for
  agreeing or disagreeing.
* ``moments``: each voter's confusion shrunk toward a skill read from pairwise
  agreement, which no decision feeds (``bench/consensus_moments.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

import numpy as np

from bench import consensus_moments
from synset_builder.consensus import confusion_em as em
from synset_builder.consensus import model
from synset_builder.consensus.base import Encoded
from synset_builder.consensus.dawid_skene import DawidSkene, gold_indices
from synset_builder.consensus.replay import DynamicConsensus

_ORIGINAL: dict[str, Callable] = {
    "posterior": model.SkillState.posterior,
    "log_columns": model.SkillState.log_columns,
    "refit": model.SkillState.refit,
    "credit": model.SkillState.credit,
    "judge": model.SkillState.judge,
    "_refit": DynamicConsensus._refit,
}


def uninstall() -> None:
    """Back to the product's model."""
    consensus_moments.uninstall()
    for name in ("posterior", "log_columns", "refit", "credit", "judge"):
        setattr(model.SkillState, name, _ORIGINAL[name])
    DynamicConsensus._refit = _ORIGINAL["_refit"]  # type: ignore[method-assign]


def install(name: str, *, rho: float = 0.05, votes: Sequence | None = None,
            classes: Sequence | None = None) -> None:  # fmt: skip
    """Patch in one prototype (``tempered``, ``oracle`` with the file's ``votes``, ...)."""
    uninstall()
    if name == "tempered":
        model.SkillState.posterior = _tempered(rho)  # type: ignore[method-assign]
    elif name == "oracle":
        _install_oracle(votes or [], classes or [])
    elif name == "pooled":
        DynamicConsensus._refit = _pooled_refit  # type: ignore[method-assign]
    elif name == "firstm":
        DynamicConsensus._refit = _first_votes_refit  # type: ignore[method-assign]
    elif name == "moments":
        consensus_moments.install()
    elif name != "default":
        raise ValueError(f"unknown prototype {name!r}")


def _tempered(rho: float) -> Callable:
    def posterior(self, group, votes):  # noqa: ANN001, ANN202 - SkillState.posterior
        prior = self.priors.get(group) or [1.0 / self.k] * self.k
        evidence = [0.0] * self.k
        for worker, label in votes:
            col = self.log_columns(worker)[label]
            for c in range(self.k):
                evidence[c] += col[c]
        factor = 1.0 / (1.0 + rho * max(len(votes) - 1, 0))
        evidence = [e * factor for e in evidence]
        log_p = [math.log(prior[c]) + evidence[c] for c in range(self.k)]
        return model._normalise_log(log_p), evidence

    return posterior


def _install_oracle(votes: Sequence, classes: Sequence) -> None:
    confusion = DawidSkene().fit(votes, classes=classes).errors_

    def log_columns(self, worker):  # noqa: ANN001, ANN202
        c = confusion[worker]
        return [[math.log(c[t][v]) for t in range(self.k)] for v in range(self.k)]

    model.SkillState.log_columns = log_columns  # type: ignore[method-assign]
    model.SkillState.refit = lambda self, *a, **k: None  # type: ignore[method-assign]
    model.SkillState.credit = lambda self, *a, **k: []  # type: ignore[method-assign]
    model.SkillState.judge = lambda self, *a, **k: None  # type: ignore[method-assign]


def _weighted_refit(
    st: model.SkillState,
    enc: Encoded,
    gold: np.ndarray,
    gidx: np.ndarray,
    names: dict[int, Hashable],
    weight: np.ndarray,
    n_iter: int,
    vote_weight: np.ndarray | None = None,
) -> None:
    """SkillState.refit with a weight per *vote* (``firstm``): the product's refit takes
    a weight per item (what ``hard`` uses), not per vote, so this repeats its loop."""
    n_groups = int(gidx.max()) + 1 if len(gidx) else 1
    support_items = np.maximum(weight, (gold >= 0).astype(float))
    opts = {"alpha": 1e-3, "shrink": st.shrink, "template": st.newcomer, "prior_alpha": 2.0,
            "prior_weight": support_items}  # fmt: skip
    probas, soft = em._start(enc, gold, True)
    per_vote = weight[enc.item_idx] if vote_weight is None else vote_weight
    support = np.maximum(per_vote, (gold[enc.item_idx] >= 0).astype(float))
    confusion, priors, temps = em.m_step(enc, probas, soft * support[:, None], gidx, n_groups,
                                         **opts)  # fmt: skip
    for _ in range(n_iter):
        log_post, per_vote_ll = em.e_step(enc, confusion, priors, gidx, temps)
        new = em._clamp(em.normalise(log_post), gold)
        soft = em._credit(enc, log_post, per_vote_ll, gold, True, support)
        confusion, priors, temps = em.m_step(enc, new, soft, gidx, n_groups, **opts)
        delta = float(np.abs(new - probas).max()) if len(new) else 0.0
        probas = new
        if delta < 1e-5:
            break
    credit = model._loo_credit(enc, confusion, priors, gidx) * per_vote[:, None]
    credit[gold[enc.item_idx] >= 0] = 0.0
    counts = np.zeros((enc.n_workers, st.k, st.k))
    np.add.at(counts, (enc.worker_idx, slice(None), enc.label_idx), credit)
    st.counts = {worker: counts[j].tolist() for j, worker in enumerate(enc.workers)}
    group_priors = model._likelihood_prior(enc, confusion, gidx)
    st.priors = {names[g]: model._floored(p) for g, p in enumerate(group_priors)}
    st._log_rows.clear()


# -- ``firstm``: every item's first votes measure the voters -------------------------

FIRST_M = 3


def _first_votes_refit(self: DynamicConsensus) -> None:
    """DynamicConsensus._refit where the voters are measured on every item's first
    ``FIRST_M`` counted votes (items with two or more), pending items included.

    Those votes were taken whatever they said: the rule's choice to stop or go on
    came after them, so they are a sample of the voters not selected for agreeing
    (decided items) or for disagreeing (items at the cap)."""
    st = self._st
    encoded = self.encoded()
    if encoded is not None:
        enc, gidx, names = encoded
        n = np.bincount(enc.item_idx, minlength=enc.n_items)
        first = np.r_[0, np.flatnonzero(np.diff(enc.item_idx)) + 1]  # votes are item by item
        start = np.zeros(enc.n_items, dtype=np.int64)
        start[enc.item_idx[first]] = first
        position = np.arange(len(enc.item_idx)) - start[enc.item_idx]
        vote_w = ((position < FIRST_M) & (n[enc.item_idx] >= 2)).astype(float)
        item_w = (n >= 2).astype(float)
        if vote_w.any():
            gold = gold_indices(enc.items, enc.classes, self._gold)
            _weighted_refit(st, enc, gold, gidx, names, item_w, self.n_iter, vote_weight=vote_w)
    for item, it in self._items.items():
        it.verdict = self._verdict(item)


# -- ``pooled``: newcomers start from the crowd's own kind of error --------------------


def _pooled_refit(self: DynamicConsensus) -> None:
    """DynamicConsensus._refit, then the newcomer template (the pseudo-votes every
    record starts from) set to the crowd's pooled confusion, moved toward chance
    until its kappa is at most the configured newcomer skill: as skeptical as
    before, but with the crowd's lean and its look-alike classes."""
    _ORIGINAL["_refit"](self)
    st = self._st
    if not st.counts:
        return
    k = st.k
    pooled = np.asarray(model.template(k, st.skill)) * 10.0
    for counts in st.counts.values():
        pooled = pooled + np.asarray(counts, dtype=float)
    pooled = pooled / pooled.sum(axis=1, keepdims=True)
    kap = model.kappa(pooled)
    lam = min(1.0, st.skill / kap) if kap > 0 else 0.0
    newcomer = lam * pooled + (1.0 - lam) * np.full((k, k), 1.0 / k)
    st.newcomer = newcomer
    st._pseudo = (st.shrink * newcomer + 1e-3).tolist()
    st._log_rows.clear()
    for item, it in self._items.items():
        it.verdict = self._verdict(item)
