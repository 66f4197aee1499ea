"""Near-duplicate search and grouping, in two phases like imagededup: encode, then search.

Hashes are computed once (:mod:`synset_builder.clean.fingerprint`) and stored, so changing
``--max-distance`` never re-hashes. Search matches two images when the full-picture
hash of one is within the distance of *any* stored hash of the other (full, central
90% and 80% crops, mirror): one full-picture pHash moves under a small crop, and
under a flip, about as far as it does between unrelated photos, so it alone cannot
catch them at a safe threshold (docs/benchmarks.md has the measured distances).

Connected pairs form groups (connected components, i.e. union-find). Within a
synset one representative per group is kept; across synsets the shared picture is
a conflict; against a reference set it is a leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synset_builder.clean.hamming_index import SEARCHERS, as_uint64

VARIANTS = ("full", "crop90", "crop80", "mirror")


@dataclass(frozen=True)
class HashTable:
    """Hashes of n images: ``variants[:, 0]`` is the full picture (n x 4, uint64)."""

    variants: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]]) -> HashTable:
        arr = np.asarray(rows, dtype=np.int64).reshape(-1, len(VARIANTS))
        return cls(as_uint64(arr))

    def __len__(self) -> int:
        return len(self.variants)

    @property
    def full(self) -> np.ndarray:
        return np.ascontiguousarray(self.variants[:, 0])


def cross_pairs(
    a: HashTable, b: HashTable, max_distance: int, search: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """(index in a, index in b) of every near-duplicate pair between two tables.

    Queries are full hashes; the base holds every variant, so a crop of ``a`` is
    found through ``b``'s crop hashes and the other way round.
    """
    find = SEARCHERS[search]
    k = len(VARIANTS)
    qa, bb = find(b.variants.reshape(-1), a.full, max_distance)
    qb, ba = find(a.variants.reshape(-1), b.full, max_distance)
    ia = np.concatenate([qa, ba // k])
    ib = np.concatenate([bb // k, qb])
    if not len(ia):
        return ia, ib
    code = np.unique(ia * len(b) + ib)
    return code // len(b), code % len(b)


def self_pairs(
    table: HashTable, max_distance: int, search: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j for every near-duplicate pair inside one table."""
    find = SEARCHERS[search]
    q, b = find(table.variants.reshape(-1), table.full, max_distance)
    b = b // len(VARIANTS)
    i, j = np.minimum(q, b), np.maximum(q, b)
    keep = i < j
    if not keep.any():
        return i[keep], j[keep]
    code = np.unique(i[keep] * len(table) + j[keep])
    return code // len(table), code % len(table)


def group_labels(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component label of each of n items given the pairs (i, j)."""
    if n == 0:
        return np.empty(0, np.int64)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def group_ids(ids: Sequence[int], labels: np.ndarray) -> list[int]:
    """Name each group by its smallest member id, so names survive new members."""
    ids_arr = np.asarray(ids, dtype=np.int64)
    if not len(ids_arr):
        return []
    smallest = np.full(labels.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, labels, ids_arr)
    return smallest[labels].tolist()


@dataclass(frozen=True)
class Member:
    """One candidate of a synset inside a near-duplicate group, with what ranks it."""

    candidate_id: int
    eligible: bool  # passed quality or kept by a curator
    keep: bool
    area: int
    nbytes: int
    sharpness: float
    greyscale: bool

    def rank(self) -> tuple:
        # Best first: usable, kept, largest, least compressed (more bytes for the same
        # pixels; sharpness would reward JPEG artefacts), in colour, sharpest, first.
        return (
            not self.eligible,
            not self.keep,
            -self.area,
            -self.nbytes,
            self.greyscale,
            -self.sharpness,
            self.candidate_id,
        )


def representatives(members: Sequence[Member]) -> dict[int, int | None]:
    """candidate id -> the candidate it duplicates (None for the one kept).

    Curator-kept pictures are never marked as copies of another, so ``--keep``
    always brings a picture back.
    """
    ordered = sorted(members, key=Member.rank)
    best = ordered[0].candidate_id
    return {m.candidate_id: None if m.candidate_id == best or m.keep else best for m in members}
