"""Levers for the binary crowds' order spread, measured against the default rule.

Why: issue 18's spread target (best minus worst of 10 vote orders <= 0.06) is
missed on simulated near-chance binary crowds. This compares, on the same
crowds and orders as ``bench/consensus_sweep.py``, plus face_sentiment (real):

* ``default``: the product's rule (hard items, :mod:`synset_builder.consensus.
  hard_items`, threshold 0.9); ``plain``: the rule before them (no hard items,
  threshold 0.95); ``t98``: the threshold 0.98 (a setting,
  ``SYNSET_CONSENSUS_THRESHOLD``): more votes before an item stops;
* ``rho05``, ``oracle``, ``firstm``, ``pooled``: the models of
  ``bench/consensus_prototypes.py`` (not in the product), on the plain rule:
  evidence tempered for errors correlated within an item; skills known in
  advance (Dawid-Skene on every vote, a bound); every item's first votes
  measure the voters; a crowd-shaped newcomer; ``moments``: skills anchored on
  pairwise agreement (``bench/consensus_moments.py``), on the product's rule.
* any variant at another threshold: ``name@threshold`` (``plain@0.9``).

    nice .venv/bin/python bench/consensus_levers.py [--orders 10] [--jobs 2] [--variants a,b]
        [--passes 2]

``--passes``: plays of the vote list, by default what ``synset consensus evaluate``
does (the figures in docs/benchmarks.md before the seventh session's were taken
with one play, ``--passes 1``).

Prints, per variant and crowd, mean accuracy, spread (best minus worst order),
the standard deviation over orders, votes per item and the share of decided
items that is right.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import consensus_prototypes as proto  # noqa: E402
from bench.consensus import accuracy, face_sentiment  # noqa: E402
from synset_builder.config.consensus import DynamicConfig  # noqa: E402
from synset_builder.consensus.evaluate import PASSES  # noqa: E402
from synset_builder.consensus.replay import DynamicConsensus  # noqa: E402
from tests.crowd_sim import biased_binary, fine_grained, near_chance_binary, shuffled  # noqa: E402

VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("default", {}),  # the product's default: hard items, threshold 0.9
    "plain": ("default", {"hard_items": False, "threshold": 0.95}),  # the rule before them
    "t98": ("default", {"threshold": 0.98}),
    "rho05": ("tempered", {"hard_items": False, "threshold": 0.95}),
    "oracle": ("oracle", {"hard_items": False, "threshold": 0.95}),
    "firstm": ("firstm", {"hard_items": False}),
    "pooled": ("pooled", {"hard_items": False, "threshold": 0.95}),
    "moments": ("moments", {}),  # on the product's rule (hard items, 0.9)
}


def variant(name: str) -> tuple[str, dict]:
    """A named variant, or ``prototype@threshold`` (e.g. ``hard@0.9``)."""
    if "@" in name:
        prototype, threshold = name.split("@")
        return VARIANTS[prototype][0], {**VARIANTS[prototype][1], "threshold": float(threshold)}
    return VARIANTS[name]


CROWDS = {"binary": near_chance_binary, "biased": biased_binary, "fine": fine_grained}


Job = tuple[str, str, int, int, int]  # variant, crowd, seed, order, passes


def run(job: Job) -> tuple[Job, tuple[float, ...]]:
    name, kind, seed, order, passes = job
    prototype, config = variant(name)
    votes, truth, classes = face_sentiment() if kind == "faces" else CROWDS[kind](seed)
    proto.install(prototype, votes=votes, classes=classes)
    fit = DynamicConsensus(config=DynamicConfig(**config)).replay(
        shuffled(votes, order), classes=classes, passes=passes
    )
    decided = [i for i in truth if fit.decided_[i]]
    precision = np.mean([fit.labels_[i] == truth[i] for i in decided]) if decided else 0.0
    used = sum(fit.used_.values()) / len(fit.used_)
    return job, (accuracy(fit.labels_, truth), used, float(precision))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--binary-seeds", type=int, default=5)
    parser.add_argument("--biased-seeds", type=int, default=5)
    parser.add_argument("--fine-seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-faces", dest="faces", action="store_false")
    parser.add_argument("--passes", type=int, default=PASSES, help="plays of the vote list")
    args = parser.parse_args()
    names, p = args.variants.split(","), args.passes
    jobs = [(v, "binary", s, o, p) for v in names for s in range(args.binary_seeds)
            for o in range(args.orders)]  # fmt: skip
    jobs += [(v, "biased", s, o, p) for v in names for s in range(args.biased_seeds)
             for o in range(args.orders)]  # fmt: skip
    jobs += [(v, "fine", s, o, p) for v in names for s in range(args.fine_seeds)
             for o in range(max(1, args.orders // 2))]  # fmt: skip
    if args.faces:
        jobs += [(v, "faces", 0, o, p) for v in names for o in range(args.orders)]
    got: dict[tuple[str, str, int], list[tuple[float, ...]]] = defaultdict(list)
    # one job per process: each installs its own prototype by patching classes
    with Pool(args.jobs, maxtasksperchild=1) as pool:
        for (name, kind, seed, _, _), row in pool.imap_unordered(run, jobs):
            got[(name, kind, seed)].append(row)
    print("variant  crowd   seed  accuracy  spread      sd  votes/item  decided-right  orders")
    for (name, kind, seed), rows in sorted(got.items()):
        acc, used, right = (np.array(col) for col in zip(*rows, strict=True))
        print(f"{name:8} {kind:7} {seed:4}  {acc.mean():8.3f}  {np.ptp(acc):6.3f}  "
              f"{acc.std():6.4f}  {used.mean():10.2f}  {right.mean():13.3f}  "
              f"{len(rows):6}")  # fmt: skip


if __name__ == "__main__":
    main()
