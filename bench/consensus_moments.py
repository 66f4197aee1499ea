"""Prototype ``moments`` of ``bench/consensus_prototypes.py``: skills anchored on pairwise
agreement, which no decision feeds. Measured, not adopted (docs/benchmarks.md).

Why tried: in the worst orders of the near-chance crowds the refit's skills
correlate *negatively* with the true ones (decided items are only half right):
decisions measure the voters, the voters' skills justify the decisions, and an
early wrong turn reinforces itself. Agreement between two voters does not depend
on any decision: under a one-coin model ``2 a_ij - 1 = s_i s_j`` (binary), so a
rank-one fit of the agreement matrix, weighted by how many items each pair shares,
estimates every ``s`` from the votes alone (the spectral start of Zhang et al.
2014, "Spectral methods meet EM"). Here each voter's estimate replaces the fixed
newcomer template as the target their confusion is shrunk toward, with
``STRENGTH`` pseudo-votes, in the refit's EM and in every posterior between refits.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np

from synset_builder.consensus import confusion_em as em
from synset_builder.consensus import model
from synset_builder.consensus.replay import DynamicConsensus

STRENGTH = 4.0
RIDGE = 2.0  # pseudo-pairs pulling each estimate toward START
START = 0.3  # the newcomer's skill, chance 0 to perfect 1

_ORIGINAL: dict[str, Callable] = {
    "confusion": model.SkillState.confusion,
    "m_step": em.m_step,
    "_refit": DynamicConsensus._refit,
}


def uninstall() -> None:
    model.SkillState.confusion = _ORIGINAL["confusion"]  # type: ignore[method-assign]
    em.m_step = _ORIGINAL["m_step"]
    DynamicConsensus._refit = _ORIGINAL["_refit"]  # type: ignore[method-assign]


def agreement_skills(items: dict, excluded: dict, k: int, iters: int = 30) -> dict[Hashable, float]:
    """Per voter, ``s`` (0 chance, 1 perfect) from a weighted rank-one fit of the
    chance-corrected agreement of every pair that shares an item."""
    index: dict[Hashable, int] = {}
    pairs: dict[tuple[int, int], list[int]] = {}
    for it in items.values():
        votes = [(w, label) for w, label in it.votes if w not in excluded]
        for a, (wa, la) in enumerate(votes):
            for wb, lb in votes[a + 1 :]:
                i, j = sorted((index.setdefault(wa, len(index)), index.setdefault(wb, len(index))))
                seen = pairs.setdefault((i, j), [0, 0])
                seen[0] += 1
                seen[1] += la == lb
    n = len(index)
    if n < 3:
        return {}
    shared, agreed = np.zeros((n, n)), np.zeros((n, n))
    for (i, j), (count, same) in pairs.items():
        shared[i, j] = shared[j, i] = count
        agreed[i, j] = agreed[j, i] = same
    moment = np.where(shared > 0, (k * agreed / np.maximum(shared, 1) - 1) / (k - 1), 0.0)
    s = np.full(n, START)
    for _ in range(iters):
        s = (shared * moment @ s + RIDGE * START) / (shared @ (s * s) + RIDGE)
        s = np.clip(s, -0.5, 0.95)
    s = s if s.mean() >= 0 else -s  # the crowd is better than chance on average
    return {w: float(s[i]) for w, i in index.items()}


def _template(s: float, k: int) -> np.ndarray:
    p = 1 / k + max(s, 0.0) * (1 - 1 / k)
    out = np.full((k, k), (1 - p) / (k - 1))
    np.fill_diagonal(out, p)
    return out


def install() -> None:
    """Patch the product: the refit computes the anchors, posteriors and EM use them."""
    skills: dict[Hashable, float] = {}

    def _refit(self: DynamicConsensus) -> None:
        skills.clear()
        skills.update(agreement_skills(self._items, self._st.excluded, len(self._classes)))
        self._st._log_rows.clear()
        _ORIGINAL["_refit"](self)

    def confusion(self: model.SkillState, worker: Hashable) -> list[list[float]]:
        if worker not in skills:
            return _ORIGINAL["confusion"](self, worker)
        target = _template(skills[worker], self.k)
        rows = STRENGTH * target + 1e-3
        for part in (self.counts.get(worker), self.gold_counts.get(worker)):
            if part is not None:
                rows = rows + np.asarray(part, dtype=float)
        return (rows / rows.sum(axis=1, keepdims=True)).tolist()

    def m_step(enc, probas, soft, group_idx, n_groups, **opts):  # noqa: ANN001, ANN003, ANN202
        confusion_, priors, temps = _ORIGINAL["m_step"](enc, probas, soft, group_idx, n_groups,
                                                        **opts)  # fmt: skip
        if not skills:
            return confusion_, priors, temps
        k = enc.n_classes
        counts = np.zeros((enc.n_workers, k, k))
        np.add.at(counts, (enc.worker_idx, slice(None), enc.label_idx), soft)
        newcomer = opts.get("template")
        target = np.stack([_template(skills[w], k) if w in skills else newcomer
                           for w in enc.workers])  # fmt: skip
        counts += opts["alpha"] + STRENGTH * target
        return counts / counts.sum(axis=2, keepdims=True), priors, temps

    DynamicConsensus._refit = _refit  # type: ignore[method-assign]
    model.SkillState.confusion = confusion  # type: ignore[method-assign]
    em.m_step = m_step
