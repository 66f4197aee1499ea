"""The Hamming search index finds exactly the pairs brute force finds."""

from __future__ import annotations

import numpy as np
import pytest

from synset_builder.clean.hamming_index import SEARCHERS, as_uint64, brute_pairs, mih_pairs


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random hashes and queries that are copies of some of them with a few bits flipped."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, n, dtype=np.uint64)
    queries = base[rng.integers(0, n, n // 2)].copy()
    for k in range(len(queries)):
        for bit in rng.choice(64, int(rng.integers(0, 14)), replace=False):
            queries[k] ^= np.uint64(1) << np.uint64(int(bit))
    return base, queries


def _as_set(pairs: tuple[np.ndarray, np.ndarray]) -> set[tuple[int, int]]:
    return set(zip(pairs[0].tolist(), pairs[1].tolist(), strict=True))


@pytest.mark.parametrize("radius", [0, 1, 4, 8, 10, 13])
def test_index_matches_brute_force(radius: int) -> None:
    base, queries = _planted(3000, seed=radius)
    expected = _as_set(brute_pairs(base, queries, radius))
    assert expected  # the planted copies are there to be found
    assert _as_set(mih_pairs(base, queries, radius)) == expected
    assert _as_set(SEARCHERS["auto"](base, queries, radius)) == expected


def test_signed_database_values_are_the_same_bits() -> None:
    signed = np.array([-1, 0, -(2**63)], dtype=np.int64)
    assert as_uint64(signed).tolist() == [2**64 - 1, 0, 2**63]
    i, j = mih_pairs(signed, np.array([-2], dtype=np.int64), 1)
    assert (i.tolist(), j.tolist()) == ([0], [0])


def test_bad_radius_and_empty_inputs() -> None:
    with pytest.raises(ValueError, match="between 0 and 63"):
        mih_pairs(np.zeros(3, np.uint64), np.zeros(1, np.uint64), 64)
    i, j = mih_pairs(np.zeros(0, np.uint64), np.zeros(4, np.uint64), 3)
    assert len(i) == len(j) == 0
