"""The one data contract every aggregator shares: a long table of votes.

Crowd-kit style: a vote is ``(item, worker, label)``; an aggregator is a small
class whose hyper-parameters are fields, ``fit(votes, gold=..., groups=...)``
returns ``self``, and fitted results end in ``_``. Items, workers and labels may
be any hashable (candidate ids and booleans in the database, strings in CSV
files), so the same code serves the web app, ``synset consensus`` and
``synset consensus evaluate``. Encoding to integer arrays happens once here so
each method is a few vectorised numpy lines.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np

VoteRow = tuple[Hashable, Hashable, Hashable]


@dataclass(frozen=True)
class Encoded:
    """Votes as integer arrays, with the lists that map indices back to names."""

    items: list[Hashable]
    workers: list[Hashable]
    classes: list[Hashable]
    item_idx: np.ndarray
    worker_idx: np.ndarray
    label_idx: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def encode(
    votes: Iterable[VoteRow],
    *,
    classes: Sequence[Hashable] | None = None,
    extra_items: Iterable[Hashable] = (),
) -> Encoded:
    """Index items, workers and labels in order of first appearance.

    ``classes`` fixes the label order (e.g. ``[False, True]``) so ``probas_``
    columns mean the same thing across fits; ``extra_items`` adds items that
    have no vote (gold items, say) so they still get a row.
    """
    item_ix: dict[Hashable, int] = {}
    worker_ix: dict[Hashable, int] = {}
    class_ix: dict[Hashable, int] = {c: i for i, c in enumerate(classes or ())}
    rows: list[tuple[int, int, int]] = []
    for item, worker, label in votes:
        i = item_ix.setdefault(item, len(item_ix))
        w = worker_ix.setdefault(worker, len(worker_ix))
        if label not in class_ix:
            if classes is not None:
                raise ValueError(f"label {label!r} is not one of {list(classes)!r}")
            class_ix[label] = len(class_ix)
        rows.append((i, w, class_ix[label]))
    for item in extra_items:
        item_ix.setdefault(item, len(item_ix))
    arr = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return Encoded(
        items=list(item_ix),
        workers=list(worker_ix),
        classes=list(class_ix),
        item_idx=arr[:, 0],
        worker_idx=arr[:, 1],
        label_idx=arr[:, 2],
    )


def vote_counts(enc: Encoded) -> np.ndarray:
    """items x classes matrix of how many votes each label got."""
    counts = np.zeros((enc.n_items, enc.n_classes))
    np.add.at(counts, (enc.item_idx, enc.label_idx), 1.0)
    return counts


def labels_from(enc: Encoded, probas: np.ndarray) -> dict[Hashable, Hashable]:
    """The most probable class per item; ties go to the earlier class in ``classes``."""
    best = probas.argmax(axis=1)
    return {item: enc.classes[best[i]] for i, item in enumerate(enc.items)}


def probas_dict(enc: Encoded, probas: np.ndarray) -> dict[Hashable, dict[Hashable, float]]:
    return {
        item: {c: float(probas[i, k]) for k, c in enumerate(enc.classes)}
        for i, item in enumerate(enc.items)
    }


class Aggregator(Protocol):
    """What every consensus method offers after ``fit``."""

    labels_: dict[Hashable, Hashable]
    probas_: dict[Hashable, dict[Hashable, float]]

    def fit(
        self,
        votes: Sequence[VoteRow],
        *,
        gold: Mapping[Hashable, Hashable] | None = None,
        groups: Mapping[Hashable, Hashable] | None = None,
        classes: Sequence[Hashable] | None = None,
    ) -> Self: ...
