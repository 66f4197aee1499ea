"""Near-duplicate search at scale: the clean stage's index against FAISS, and its growth.

For each size n: n images of four random 64-bit hashes each (full picture, two crops,
mirror), 1% of them planted as copies (their full hash is another image's hash, any of
the four, with 0 to ``--distance`` bits flipped). The search is the clean stage's own
call, ``dedup.self_pairs`` (n full-hash queries against the 4n stored hashes, the
index the product picks), timed in CPU seconds and wall seconds; recall is the share
of planted pairs it returns (it must be 1.0).

The peer is FAISS's binary multi-index hash (``faiss.IndexBinaryMultiHash``, 3 tables
of 21 bits, ``nflip`` = 2: the configuration that is exact at distance 8 by
pigeonhole, as FAISS's docs describe for the multi-hash index), given the same 4n
hashes and n queries, threads set to the same core count; its pairs are checked
against ours. It is run up to ``--peer-max`` images (its time grows fast).

Run: ``nice .venv/bin/python bench/hamming_search.py [--sizes 10000,100000,1000000]``.
Needs the ``bench`` extra for the peer (faiss-cpu); without it the peer is skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synset_builder.clean.dedup import VARIANTS, HashTable, self_pairs  # noqa: E402
from synset_builder.clean.hamming_index import _cores, plan_chunks  # noqa: E402

DEFAULT_SIZES = "10000,30000,100000,300000,1000000,3000000,10000000"


def _timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds of every thread of this process)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return result, wall, cpu


def planted_table(n: int, distance: int, seed: int) -> tuple[HashTable, set[tuple[int, int]]]:
    """Random hashes with 1% of images made copies of another; returns the planted pairs."""
    rng = np.random.default_rng(seed)
    variants = rng.integers(0, 2**64, (n, len(VARIANTS)), dtype=np.uint64)
    copies = rng.choice(n, max(1, n // 100), replace=False)
    # Sources are never copies themselves, so no planted hash is overwritten later.
    others = np.setdiff1d(np.arange(n), copies)
    sources = others[rng.integers(0, len(others), len(copies))]
    for i, j in zip(copies.tolist(), sources.tolist(), strict=True):
        flips = rng.choice(64, int(rng.integers(0, distance + 1)), replace=False)
        variants[i, 0] = variants[j, int(rng.integers(0, len(VARIANTS)))] ^ np.uint64(
            sum(1 << int(b) for b in flips)
        )
    pairs = {(min(i, j), max(i, j)) for i, j in zip(copies.tolist(), sources.tolist(), strict=True)}
    return HashTable(variants), pairs


def faiss_pairs(table: HashTable, distance: int, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """The clean rule's pairs (i < j) through FAISS's multi-index hash, set up to be exact."""
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexBinaryMultiHash(64, 3, 21)
    index.nflip = 2
    index.add(np.ascontiguousarray(table.variants.reshape(-1)).view(np.uint8).reshape(-1, 8))
    # FAISS keeps distances strictly below the radius.
    lims, _, found = index.range_search(table.full.view(np.uint8).reshape(-1, 8), distance + 1)
    q = np.repeat(np.arange(len(table)), np.diff(lims).astype(np.int64))
    b = found // len(VARIANTS)
    i, j = np.minimum(q, b), np.maximum(q, b)
    keep = i < j
    code = np.unique(i[keep] * len(table) + j[keep])
    return code // len(table), code % len(table)


def _start_up() -> tuple[float, float]:
    """Importing numba and loading the cached compiled loop: paid once per process."""
    from synset_builder.clean.hamming_index import mih_pairs

    one = np.arange(8, dtype=np.uint64)
    _, wall, cpu = _timed(lambda: mih_pairs(one, one, 8))
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated image counts")
    parser.add_argument("--distance", type=int, default=8)
    parser.add_argument("--peer-max", type=int, default=100_000,
                        help="largest size the FAISS peer runs at")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    r, threads = args.distance, _cores()
    try:
        import faiss

        peer = f"faiss-cpu {faiss.__version__}"
    except ImportError:
        peer = ""
    print(f"machine: {os.cpu_count()} cores ({threads} usable), load average {os.getloadavg()}")
    print(f"distance {r}; ours: dedup.self_pairs (compiled multi-index hash, {threads} threads)")
    if peer:
        print(f"peer: {peer} IndexBinaryMultiHash(64, nhash=3, b=21), nflip=2, "
              f"range_search(radius={r + 1}), omp threads {threads}, "
              f"up to {args.peer_max:,} images")  # fmt: skip
    wall, cpu = _start_up()
    print(f"start-up (import numba, load the cached compiled loop): {wall:.2f} s wall, "
          f"{cpu:.2f} CPU s, once per process, not in the rows below")  # fmt: skip
    print("\n| images | stored hashes | chunks (width/flips) | ours wall s | ours CPU s "
          "| CPU growth exponent | n log n would give | recall (planted) | pairs "
          "| peer CPU s | peer / ours | peak RSS MB | load |")  # fmt: skip
    print("| --- " * 13 + "|")
    previous: tuple[int, float] | None = None
    for n in sizes:
        table, planted = planted_table(n, r, seed=n)
        (i, j), wall, cpu = _timed(lambda t=table: self_pairs(t, r))  # type: ignore[misc]
        found = set(zip(i.tolist(), j.tolist(), strict=True))
        recall = len(planted & found) / len(planted)
        plan = plan_chunks(len(table) * len(VARIANTS), len(table), r)
        chunks = " ".join(f"{c.width}/{c.limit}" for c in plan if c.limit >= 0)
        growth = nlogn = "-"
        if previous:
            growth = f"{math.log(cpu / previous[1]) / math.log(n / previous[0]):.2f}"
            ratio = n * math.log(n) / (previous[0] * math.log(previous[0]))
            nlogn = f"{previous[1] * ratio:.2f}"
        peer_cpu = versus = "-"
        if peer and n <= args.peer_max:
            (pi, pj), _, fcpu = _timed(lambda t=table: faiss_pairs(t, r, threads))  # type: ignore[misc]
            same = set(zip(pi.tolist(), pj.tolist(), strict=True)) == found
            peer_cpu = f"{fcpu:.2f}" + ("" if same else " (DIFFERENT PAIRS)")
            versus = f"{fcpu / cpu:.1f}x"
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        load = os.getloadavg()[0]
        print(f"| {n:,} | {n * len(VARIANTS):,} | {chunks} | {wall:.2f} | {cpu:.2f} | {growth} "
              f"| {nlogn} | {recall:.3f} of {len(planted):,} | {len(found):,} | {peer_cpu} "
              f"| {versus} | {rss:,} | {load:.1f} |", flush=True)  # fmt: skip
        previous = (n, cpu)


if __name__ == "__main__":
    main()
