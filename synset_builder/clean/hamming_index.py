"""Find every pair of 64-bit hashes within a Hamming distance, without O(n^2) work.

Two back-ends behind one small protocol, picked from :data:`SEARCHERS`:

* ``brute``: blockwise numpy ``bitwise_count`` over the full distance matrix. Exact
  and simple, the reference the index is tested against; quadratic, so only for
  small sets.
* ``mih``: multi-index hashing (Norouzi, Punjani & Fleet, 2012). The 64 bits are
  cut into ``m`` chunks. If two hashes are within ``r`` bits, then for any limits
  ``t_i`` on the chunks with ``sum(t_i + 1) > r`` some chunk differs in at most
  ``t_i`` bits (pigeonhole; a chunk with no budget is simply not probed). Each
  probed chunk gets a counting-sort table of the base; every query looks up its
  chunk value XOR every mask of at most ``t_i`` bits and verifies the hashes found
  with a full popcount. The probe loop is compiled (:mod:`.hamming_kernels`) and
  runs mask ranges on all cores. The chunking is chosen by a cost model from the
  sizes of base and queries.

FAISS's binary multi-index hash (``IndexBinaryMultiHash``) does the same search
exactly when configured for it, but it keeps hash-map buckets and probes one query
at a time; measured side by side (``bench/hamming_search.py``) it was far slower,
so it stays a benchmark peer, not a dependency.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Pairs = tuple[np.ndarray, np.ndarray]
# Bucket offsets are int32: 2**26 of them take 256 MiB.
_MAX_CHUNK_BITS = 26


class HammingSearch(Protocol):
    def __call__(self, base: np.ndarray, queries: np.ndarray, radius: int) -> Pairs:
        """(query index, base index) arrays for every pair within ``radius`` bits."""
        ...


def as_uint64(values: object) -> np.ndarray:
    """Hashes as uint64, whether given as signed int64 (database) or unsigned."""
    arr = np.asarray(values)
    if arr.dtype == np.uint64:
        return arr
    return np.asarray(arr, dtype=np.int64).view(np.uint64)


def _check_radius(radius: int) -> None:
    if not 0 <= radius < 64:
        raise ValueError(f"a Hamming radius must be between 0 and 63, not {radius}")


def _empty() -> Pairs:
    return np.empty(0, np.int64), np.empty(0, np.int64)


def brute_pairs(base: np.ndarray, queries: np.ndarray, radius: int) -> Pairs:
    """Exact search over the full distance matrix, a block of queries at a time."""
    _check_radius(radius)
    base, queries = as_uint64(base), as_uint64(queries)
    if not len(base) or not len(queries):
        return _empty()
    block = max(1, (1 << 24) // len(base))
    found_q, found_b = [], []
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        dist = np.bitwise_count(q[:, None] ^ base[None, :])
        qi, bi = np.nonzero(dist <= radius)
        found_q.append(qi + start)
        found_b.append(bi)
    return np.concatenate(found_q).astype(np.int64), np.concatenate(found_b).astype(np.int64)


def _chunks(m: int) -> list[tuple[int, int]]:
    """(low bit, width) of ``m`` chunks covering 64 bits, widths differing by at most one."""
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    lows = [sum(widths[:i]) for i in range(m)]
    return list(zip(lows, widths, strict=True))


def _probes(width: int, limit: int) -> int:
    return sum(math.comb(width, k) for k in range(limit + 1))


# Relative costs of the cost model, in units of one probe of one query (a bucket
# lookup, mostly a cache miss): verifying one base hash found in a bucket (read in
# sequence, one popcount), and building the tables (a counting sort per chunk of
# base and queries, plus clearing the bucket array). Fitted to bench/hamming_search.py
# runs over forced chunkings of 30k to 1M images.
_VERIFY_COST = 0.1
_BUILD_COST = 4.0


@dataclass(frozen=True)
class Chunk:
    """Bits ``low .. low+width-1``; probed with every flip of up to ``limit`` bits."""

    low: int
    width: int
    limit: int  # -1: not probed

    @property
    def bits(self) -> int:
        return ((1 << self.width) - 1) << self.low


def plan_chunks(n_base: int, n_queries: int, radius: int) -> list[Chunk]:
    """The chunking and flip limits with the least expected work for these sizes.

    The ``radius + 1`` units of budget go to the widest chunks first, as evenly as
    possible (a chunk with ``u`` units is probed up to ``u - 1`` flips), which
    keeps ``sum(limit + 1) > radius`` and so the search exact.
    """
    _check_radius(radius)
    best: list[Chunk] = []
    best_cost = math.inf
    for m in range(math.ceil(64 / _MAX_CHUNK_BITS), 65):
        spans = sorted(_chunks(m), key=lambda span: -span[1])
        units = [(radius + 1) // m + (1 if i < (radius + 1) % m else 0) for i in range(m)]
        chunks = [Chunk(low, width, u - 1) for (low, width), u in zip(spans, units, strict=True)]
        cost = 0.0
        for c in chunks:
            if c.limit < 0:
                continue
            per_probe = 1.0 + _VERIFY_COST * n_base / 2.0**c.width
            cost += n_queries * _probes(c.width, c.limit) * per_probe
            cost += _BUILD_COST * (n_base + n_queries) + 2.0**c.width
        if cost < best_cost:
            best, best_cost = chunks, cost
    return best


def _flip_masks(width: int, limit: int) -> np.ndarray:
    masks = [0]
    for k in range(1, limit + 1):
        for bits in itertools.combinations(range(width), k):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, dtype=np.int64)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def mih_pairs(
    base: np.ndarray,
    queries: np.ndarray,
    radius: int,
    threads: int | None = None,
    chunks: list[Chunk] | None = None,
) -> Pairs:
    """Exact search with a multi-index hash table; same pairs as :func:`brute_pairs`.

    Each pair comes once (from the first chunk that holds it). The masks of a
    chunk are shared out over ``threads`` threads (default: the cores this
    process may use); the compiled loop releases the GIL. ``chunks`` overrides
    the cost model's plan (tests run the plan of a large set on small data).
    """
    _check_radius(radius)
    base, queries = as_uint64(base), as_uint64(queries)
    if not len(base) or not len(queries):
        return _empty()
    if max(len(base), len(queries)) >= 2**31:
        raise ValueError(f"the index holds fewer than 2**31 hashes, not {len(base):,}")
    from synset_builder.clean import hamming_kernels as kernels

    threads = threads or _cores()
    found: list[tuple[np.ndarray, np.ndarray]] = []
    earlier: list[Chunk] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        plan = chunks or plan_chunks(len(base), len(queries), radius)
        if sum(c.limit + 1 for c in plan) <= radius:
            raise ValueError(f"chunk limits {[c.limit for c in plan]} miss pairs at {radius} bits")
        for chunk in plan:
            if chunk.limit < 0:
                continue
            buckets = 1 << chunk.width
            starts, base_order = kernels.counting_sort(
                kernels.chunk_keys(base, chunk.low, chunk.width), buckets
            )
            base_sorted = base[base_order]
            query_keys = kernels.chunk_keys(queries, chunk.low, chunk.width)
            _, query_order = kernels.counting_sort(query_keys, buckets)
            sweep = (query_keys[query_order], queries[query_order], query_order, starts,
                     base_sorted, base_order)  # fmt: skip
            seen_bits = np.asarray([c.bits for c in earlier], dtype=np.uint64)
            seen_limits = np.asarray([c.limit for c in earlier], dtype=np.int64)
            # More parts than threads, so that a thread slowed by other load
            # does not hold the rest up.
            parts = [p for p in np.array_split(_flip_masks(chunk.width, chunk.limit),
                                               4 * threads) if len(p)]  # fmt: skip
            found.extend(pool.map(
                lambda part, s=sweep, b=seen_bits, lim=seen_limits: kernels.probe(
                    *s, part, radius, b, lim),
                parts,
            ))  # fmt: skip
            earlier.append(chunk)
    if not found:
        return _empty()
    return np.concatenate([q for q, _ in found]), np.concatenate([b for _, b in found])


def auto_pairs(base: np.ndarray, queries: np.ndarray, radius: int) -> Pairs:
    """Brute force while the distance matrix is small, the index beyond."""
    if len(base) * len(queries) <= 1 << 26:
        return brute_pairs(base, queries, radius)
    return mih_pairs(base, queries, radius)


SEARCHERS: dict[str, Callable[[np.ndarray, np.ndarray, int], Pairs]] = {
    "auto": auto_pairs,
    "brute": brute_pairs,
    "mih": mih_pairs,
}
