"""Find every pair of 64-bit hashes within a Hamming distance, without O(n^2) work.

Two back-ends behind one small protocol, picked from :data:`SEARCHERS`:

* ``brute``: blockwise numpy ``bitwise_count`` over the full distance matrix. Exact
  and simple; fine up to tens of thousands of hashes, hopeless at a million
  (100k x 100k already takes ~30 s).
* ``mih``: multi-index hashing (Norouzi, Punjani & Fleet, 2012). The 64 bits are
  cut into ``m`` chunks; if two hashes are within ``r`` bits, some chunk differs
  in at most ``r // m`` bits (pigeonhole). Each chunk gets a counting-sort table
  (bucket offsets by chunk value); a query probes its chunk value XOR every mask
  of at most ``r // m`` bits and verifies the few hashes found with a full
  popcount. Everything is vectorised over all queries at once. ``m`` is chosen by
  a cost model from the table size, so short chunks are used for small sets and
  ~21-bit chunks for a million.

No library does this well for packed uint64 with numpy alone (FAISS's binary
indexes would, but bring a heavy native dependency), hence this module.
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
_MAX_CHUNK_BITS = 24
_BATCH = 1 << 19


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


def _probes(width: int, sub_radius: int) -> int:
    return sum(math.comb(width, k) for k in range(sub_radius + 1))


def choose_chunks(n_base: int, radius: int) -> int:
    """The chunk count with the least expected work (probes + candidates to verify)."""
    best_m, best_cost = 0, math.inf
    for m in range(1, radius + 2):
        chunks = _chunks(m)
        if max(w for _, w in chunks) > _MAX_CHUNK_BITS:
            continue
        sub = radius // m
        cost = sum(_probes(w, sub) * (1.0 + n_base / 2.0**w) for _, w in chunks)
        if cost < best_cost:
            best_m, best_cost = m, cost
    return best_m or math.ceil(64 / _MAX_CHUNK_BITS)


def _flip_masks(width: int, sub_radius: int) -> np.ndarray:
    masks = [0]
    for k in range(1, sub_radius + 1):
        for bits in itertools.combinations(range(width), k):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, dtype=np.int64)


@dataclass(frozen=True)
class _ChunkTable:
    """Counting-sort table of one chunk: base positions ordered by chunk value."""

    low: int
    width: int
    order: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    # Most probes hit an empty bucket: test that on a one-byte table first (it
    # stays in cache far better than the offsets).
    nonempty: np.ndarray

    @classmethod
    def build(cls, base: np.ndarray, low: int, width: int) -> _ChunkTable:
        keys = ((base >> np.uint64(low)) & np.uint64((1 << width) - 1)).astype(np.int64)
        counts = np.bincount(keys, minlength=1 << width)
        starts = np.zeros(1 << width, dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        order = np.argsort(keys, kind="stable")
        return cls(low, width, order, starts, counts, (counts > 0).astype(np.uint8))

    def probe(
        self, base: np.ndarray, queries: np.ndarray, flips: np.ndarray, radius: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Pairs within ``radius`` among queries whose chunk is a flip away from a base's."""
        mask = np.uint64((1 << self.width) - 1)
        found = []
        for start in range(0, len(queries), _BATCH):
            q = queries[start : start + _BATCH]
            qkeys = ((q >> np.uint64(self.low)) & mask).astype(np.int64)
            for flip in flips:
                probe = qkeys ^ flip
                hit = np.flatnonzero(self.nonempty[probe])
                if not len(hit):
                    continue
                bucket = probe[hit]
                n_in = self.counts[bucket]
                qi = np.repeat(hit, n_in)
                # Positions start..start+n-1 of every hit bucket, laid end to end.
                offsets = np.arange(len(qi)) - np.repeat(np.cumsum(n_in) - n_in, n_in)
                bi = self.order[np.repeat(self.starts[bucket], n_in) + offsets]
                close = np.bitwise_count(q[qi] ^ base[bi]) <= radius
                found.append((qi[close] + start, bi[close]))
        return found


def mih_pairs(
    base: np.ndarray, queries: np.ndarray, radius: int, threads: int | None = None
) -> Pairs:
    """Exact search with a multi-index hash table; same answer as :func:`brute_pairs`.

    The probes are spread over ``threads`` threads (default: all cores); numpy
    releases the GIL in the gathers and popcounts that dominate.
    """
    _check_radius(radius)
    base, queries = as_uint64(base), as_uint64(queries)
    if not len(base) or not len(queries):
        return _empty()
    m = choose_chunks(len(base), radius)
    sub = radius // m
    tables = [_ChunkTable.build(base, low, width) for low, width in _chunks(m)]
    threads = threads or os.cpu_count() or 1
    jobs = [
        (table, part)
        for table in tables
        for part in np.array_split(_flip_masks(table.width, sub), threads)
        if len(part)
    ]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = pool.map(lambda job: job[0].probe(base, queries, job[1], radius), jobs)
        found = [pair for result in results for pair in result]
    if not found:
        return _empty()
    # A pair may be seen through several chunks; keep each once.
    code = np.unique(np.concatenate([q for q, _ in found]) * len(base)
                     + np.concatenate([b for _, b in found]))  # fmt: skip
    return code // len(base), code % len(base)


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
