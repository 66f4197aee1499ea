"""Dawid-Skene (1979): one full confusion matrix per annotator, fitted by EM.

Binary and multi-class alike; gold items are clamped to their known answer, so
they anchor the confusions. ``skills_`` is each annotator's accuracy implied by
their confusion and the fitted prior, the figure curators compare with gold.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from synset_builder.consensus.base import VoteRow, encode, labels_from, probas_dict
from synset_builder.consensus.confusion_em import fit_em


def gold_indices(enc_items: list[Hashable], classes: list[Hashable], gold: Mapping) -> np.ndarray:
    """Per item, the index of its known class, or -1."""
    ix = {c: k for k, c in enumerate(classes)}
    return np.array([ix.get(gold.get(item), -1) if item in gold else -1 for item in enc_items])


def group_indices(items: list[Hashable], groups: Mapping | None) -> np.ndarray:
    if not groups:
        return np.zeros(len(items), dtype=np.int64)
    names: dict[Hashable, int] = {}
    return np.array([names.setdefault(groups.get(i), len(names)) for i in items], dtype=np.int64)


@dataclass
class DawidSkene:
    n_iter: int = 100
    tol: float = 1e-6
    # Light smoothing, mostly to keep log(0) away; classic DS has none.
    alpha: float = 0.1
    labels_: dict[Hashable, Hashable] = field(default_factory=dict, init=False)
    probas_: dict[Hashable, dict[Hashable, float]] = field(default_factory=dict, init=False)
    skills_: dict[Hashable, float] = field(default_factory=dict, init=False)
    errors_: dict[Hashable, np.ndarray] = field(default_factory=dict, init=False)

    def fit(
        self,
        votes: Sequence[VoteRow],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        classes: Sequence[Hashable] | None = None,
    ) -> Self:
        gold = gold or {}
        enc = encode(votes, classes=classes)
        res = fit_em(
            enc,
            gold_idx=gold_indices(enc.items, enc.classes, gold),
            group_idx=group_indices(enc.items, groups),
            alpha=self.alpha,
            n_iter=self.n_iter,
            tol=self.tol,
        )
        self.labels_ = labels_from(enc, res.probas)
        self.probas_ = probas_dict(enc, res.probas)
        prior = res.priors.mean(axis=0)
        diag = np.einsum("wkk->wk", res.confusion)
        self.skills_ = {w: float(diag[j] @ prior) for j, w in enumerate(enc.workers)}
        self.errors_ = {w: res.confusion[j] for j, w in enumerate(enc.workers)}
        return self
