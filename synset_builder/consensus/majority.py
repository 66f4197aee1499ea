"""Majority vote: the baseline every other method must beat.

Probabilities are vote shares. A tie is broken toward the label that is more
common over the whole vote set (then the earlier label), which is what a
curator would guess with no other information; ``p_yes`` of a binary tie stays
0.5, so the database path marks it undecided rather than pretending.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from synset_builder.consensus.base import VoteRow, encode, probas_dict, vote_counts


@dataclass
class MajorityVote:
    labels_: dict[Hashable, Hashable] = field(default_factory=dict, init=False)
    probas_: dict[Hashable, dict[Hashable, float]] = field(default_factory=dict, init=False)

    def fit(
        self,
        votes: Sequence[VoteRow],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        classes: Sequence[Hashable] | None = None,
    ) -> Self:
        """Count votes per item; gold items keep their known answer."""
        enc = encode(votes, classes=classes)
        counts = vote_counts(enc)
        totals = counts.sum(axis=1, keepdims=True)
        probas = counts / np.maximum(totals, 1)
        # Tie-break: add a tiny fraction of the global label frequency.
        overall = counts.sum(axis=0)
        tiebreak = overall / max(overall.sum(), 1) * 1e-6
        best = (counts + tiebreak).argmax(axis=1)
        self.labels_ = {item: enc.classes[best[i]] for i, item in enumerate(enc.items)}
        self.probas_ = probas_dict(enc, probas)
        for item, answer in (gold or {}).items():
            if item in self.labels_:
                self.labels_[item] = answer
                self.probas_[item] = {c: float(c == answer) for c in enc.classes}
        return self
