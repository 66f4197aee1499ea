"""Compiled loops of the multi-index Hamming search (numba), kept apart so that only a
search large enough to need them pays for importing and loading them.

The probe loop is the whole cost of a large search, and in numpy each probe mask was a
pass of gathers over every query with temporaries the size of the query set. Here one
few masks are one sweep over the queries *sorted by their chunk value*: consecutive
queries then look up neighbouring buckets (a XOR moves whole aligned blocks together),
so the bucket offsets and the base hashes stored in bucket order are read almost in
sequence.

Functions are compiled on first use and cached on disk (``cache=True``), and release
the GIL (``nogil=True``) so that the caller can run mask ranges on several threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

# Masks applied in one sweep over the queries: each query is read once for all of
# them, while the bucket lookups of the masks advance as that many parallel streams.
_MASKS_PER_SWEEP = 4


@intrinsic
def _popcount(typingctx, value):  # type: ignore[no-untyped-def]
    """One ``popcnt`` instruction (LLVM's ctpop) instead of a bit-twiddling sequence."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@njit(cache=True, nogil=True)
def chunk_keys(values: np.ndarray, low: int, width: int) -> np.ndarray:
    """Bits ``low .. low+width-1`` of each hash, as bucket numbers."""
    out = np.empty(len(values), np.int64)
    mask = np.uint64((1 << width) - 1)
    shift = np.uint64(low)
    for i in range(len(values)):
        out[i] = np.int64((values[i] >> shift) & mask)
    return out


@njit(cache=True, nogil=True)
def counting_sort(keys: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, order): bucket ``k`` holds ``order[starts[k]:starts[k + 1]]``, stably.

    Linear time, unlike a comparison sort of the same keys.
    """
    starts = np.zeros(buckets + 1, np.int32)
    for k in keys:
        starts[k + 1] += 1
    for k in range(buckets):
        starts[k + 1] += starts[k]
    fill = starts[:-1].copy()
    order = np.empty(len(keys), np.int32)
    for i in range(len(keys)):
        k = keys[i]
        order[fill[k]] = i
        fill[k] += 1
    return starts, order


@njit(cache=True, nogil=True)
def probe(
    query_keys: np.ndarray,
    query_values: np.ndarray,
    query_index: np.ndarray,
    starts: np.ndarray,
    base_values: np.ndarray,
    base_index: np.ndarray,
    masks: np.ndarray,
    radius: int,
    earlier_bits: np.ndarray,
    earlier_limits: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs within ``radius`` whose chunk value differs by one of ``masks``.

    Queries are given sorted by chunk value, the base in bucket order (``starts``).
    A pair that also lies within an earlier chunk's limit (``earlier_bits`` selects
    that chunk's bits, ``earlier_limits`` its flip count) was reported by that chunk,
    so each pair is reported exactly once and no deduplication pass is needed.
    """
    capacity = 1024
    out_q = np.empty(capacity, np.int64)
    out_b = np.empty(capacity, np.int64)
    found = 0
    for first in range(0, len(masks), _MASKS_PER_SWEEP):
        group = masks[first : first + _MASKS_PER_SWEEP]
        for j in range(len(query_keys)):
            value = query_values[j]
            for mask in group:
                key = query_keys[j] ^ mask
                for p in range(starts[key], starts[key + 1]):
                    diff = value ^ base_values[p]
                    if _popcount(diff) > radius:
                        continue
                    seen = False
                    for c in range(len(earlier_bits)):
                        if _popcount(diff & earlier_bits[c]) <= earlier_limits[c]:
                            seen = True
                            break
                    if seen:
                        continue
                    if found == capacity:
                        capacity *= 2
                        grown_q = np.empty(capacity, np.int64)
                        grown_b = np.empty(capacity, np.int64)
                        grown_q[:found] = out_q[:found]
                        grown_b[:found] = out_b[:found]
                        out_q, out_b = grown_q, grown_b
                    out_q[found] = query_index[j]
                    out_b[found] = base_index[p]
                    found += 1
    return out_q[:found], out_b[:found]
