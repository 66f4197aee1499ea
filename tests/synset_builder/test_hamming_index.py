"""The Hamming search index finds exactly the pairs brute force finds, each once."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from synset_builder.clean.dedup import VARIANTS, HashTable, cross_pairs, self_pairs
from synset_builder.clean.hamming_index import (
    _MAX_CHUNK_BITS,
    SEARCHERS,
    as_uint64,
    brute_pairs,
    mih_pairs,
    plan_chunks,
)


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
@pytest.mark.parametrize("threads", [1, 3])
def test_index_matches_brute_force(radius: int, threads: int) -> None:
    base, queries = _planted(3000, seed=radius)
    expected = _as_set(brute_pairs(base, queries, radius))
    assert expected  # the planted copies are there to be found
    found = mih_pairs(base, queries, radius, threads=threads)
    assert len(found[0]) == len(expected)  # each pair once, no duplicates
    assert _as_set(found) == expected
    assert _as_set(SEARCHERS["auto"](base, queries, radius)) == expected


@pytest.mark.parametrize(
    ("n_base", "n_queries", "radius"),
    [(4_000_000, 1_000_000, 8), (40_000_000, 10_000_000, 8), (400_000, 100_000, 12)],
)
def test_the_plan_of_a_large_set_is_exact_on_data_it_can_be_checked_on(
    n_base: int, n_queries: int, radius: int
) -> None:
    """The chunking picked for millions of hashes (wide chunks, two-bit flips) loses nothing."""
    plan = plan_chunks(n_base, n_queries, radius)
    assert max(c.limit for c in plan) >= 1  # a plan with flips, not the small sets' one
    base, queries = _planted(4000, seed=n_base % 97)
    expected = _as_set(brute_pairs(base, queries, radius))
    found = mih_pairs(base, queries, radius, chunks=plan)
    assert len(found[0]) == len(expected)
    assert _as_set(found) == expected


@pytest.mark.parametrize("n_base", [1, 1000, 10**6, 4 * 10**7])
def test_every_plan_is_exact_by_pigeonhole(n_base: int) -> None:
    """Chunks tile the 64 bits and their flip budgets add up past the radius."""
    for radius in range(64):
        plan = plan_chunks(n_base, max(1, n_base // 4), radius)
        covered = sorted(bit for c in plan for bit in range(c.low, c.low + c.width))
        assert covered == list(range(64)), radius
        assert max(c.width for c in plan) <= _MAX_CHUNK_BITS
        assert sum(c.limit + 1 for c in plan) > radius, radius


def test_the_clean_rule_through_the_index_finds_what_brute_force_finds() -> None:
    """self_pairs and cross_pairs (four hashes per image) with the index, random + planted."""
    rng = np.random.default_rng(7)
    n = 3000
    variants = rng.integers(0, 2**64, (n, len(VARIANTS)), dtype=np.uint64)
    # Plant copies: another image's full hash lands near one of this image's variants.
    for i in range(0, n, 3):
        j, v = int(rng.integers(0, n)), int(rng.integers(0, len(VARIANTS)))
        flips = rng.choice(64, int(rng.integers(0, 11)), replace=False)
        variants[i, 0] = variants[j, v] ^ np.uint64(sum(1 << int(b) for b in flips))
    table = HashTable(variants)
    for radius in (6, 8, 10):
        brute = _as_set(self_pairs(table, radius, "brute"))
        assert len(brute) > n // 10
        assert _as_set(self_pairs(table, radius, "mih")) == brute
    a, b = HashTable(variants[:1000]), HashTable(variants[1000:])
    brute = _as_set(cross_pairs(a, b, 8, "brute"))
    assert brute
    assert _as_set(cross_pairs(a, b, 8, "mih")) == brute


def test_the_compiled_loop_is_loaded_only_by_a_search() -> None:
    """Importing the clean stage or the web app leaves numba (and FAISS) out: it loads
    when a search or the hashing runs."""
    code = (
        "import json, sys\n"
        "import annotator_web.app, synset_builder.clean.dedup, synset_builder.clean.run\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "                        if m.split('.')[0] in ('numba', 'llvmlite', 'faiss'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_signed_database_values_are_the_same_bits() -> None:
    signed = np.array([-1, 0, -(2**63)], dtype=np.int64)
    assert as_uint64(signed).tolist() == [2**64 - 1, 0, 2**63]
    i, j = mih_pairs(signed, np.array([-2], dtype=np.int64), 1)
    assert (i.tolist(), j.tolist()) == ([0], [0])


def test_bad_radius_plan_and_empty_inputs() -> None:
    with pytest.raises(ValueError, match="between 0 and 63"):
        mih_pairs(np.zeros(3, np.uint64), np.zeros(1, np.uint64), 64)
    short = plan_chunks(1000, 1000, 4)
    with pytest.raises(ValueError, match="miss pairs at 9 bits"):
        mih_pairs(np.zeros(3, np.uint64), np.zeros(1, np.uint64), 9, chunks=short)
    i, j = mih_pairs(np.zeros(0, np.uint64), np.zeros(4, np.uint64), 3)
    assert len(i) == len(j) == 0
