"""Sweep one setting of the dynamic rule over many simulated crowds and orders.

Why: a change to the rule is adopted only if every target of issue 18 still
holds, on more crowds than the three seeds of ``bench/consensus.py``, and not
tuned to face_sentiment (which is reported, never chosen on). Per crowd and
value: mean accuracy over the orders, the spread (best minus worst order) and
the votes spent per item; with ``--spammers`` the same with always-one-answer
workers added, to read the drop.

    nice .venv/bin/python bench/consensus_sweep.py --shrink 2 --shrink 4 \
        --binary-seeds 8 --fine-seeds 3 --orders 6 [--spammers 0.2] [--jobs 2]

``--shrink -12`` is the reference: Dawid-Skene on a random 12 votes per item,
one draw per "order", i.e. how far a fixed budget alone moves from draw to draw.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.consensus import FACES, Data, accuracy, face_sentiment, fixed_k  # noqa: E402
from synset_builder.config.consensus import DynamicConfig  # noqa: E402
from synset_builder.consensus import DawidSkene  # noqa: E402
from synset_builder.consensus.replay import DynamicConsensus  # noqa: E402
from tests.crowd_sim import fine_grained, near_chance_binary, shuffled, with_spammers  # noqa: E402

# crowd kind, seed, shrink (or -k: Dawid-Skene on a random k votes per item), order, spammers
Job = tuple[str, int, float, int, float]


def crowd(kind: str, seed: int) -> Data:
    makers: dict[str, Callable[[], Data]] = {
        "binary": lambda: near_chance_binary(seed),
        "fine": lambda: fine_grained(seed),
        "faces": face_sentiment,
    }
    return makers[kind]()


def replay(job: Job) -> tuple[Job, float, float]:
    kind, seed, shrink, order, spammers = job
    votes, truth, classes = crowd(kind, seed)
    if spammers:
        votes = with_spammers(votes, classes, spammers)
    if shrink < 0:  # the reference: how much a fixed budget moves from draw to draw
        k = int(-shrink)
        labels = DawidSkene().fit(fixed_k(votes, k, order), classes=classes).labels_
        return job, accuracy(labels, truth), float(k)
    model = DynamicConsensus(config=DynamicConfig(shrink=shrink)).replay(
        shuffled(votes, order), classes=classes
    )
    return job, accuracy(model.labels_, truth), float(np.mean(list(model.used_.values())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--shrink",
        type=float,
        action="append",
        required=True,
        help="a value to replay with; -K: Dawid-Skene on random K votes/item",
    )
    parser.add_argument("--binary-seeds", type=int, default=8)
    parser.add_argument("--fine-seeds", type=int, default=3)
    parser.add_argument("--orders", type=int, default=6)
    parser.add_argument("--spammers", type=float, default=0.0)
    parser.add_argument("--faces", action="store_true", help="also face_sentiment (reported)")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    sets = [("binary", s) for s in range(args.binary_seeds)]
    sets += [("fine", s) for s in range(args.fine_seeds)]
    if args.faces and FACES.is_dir():
        sets.append(("faces", 0))
    shares = [0.0, args.spammers] if args.spammers else [0.0]
    jobs = [(kind, seed, shrink, order, share) for kind, seed in sets for shrink in args.shrink
            for share in shares for order in range(args.orders)]  # fmt: skip
    got: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    with Pool(args.jobs) as pool:
        for (kind, seed, shrink, _order, share), acc, spent in pool.imap_unordered(replay, jobs):
            got[(kind, seed, shrink, share)].append((acc, spent))
    print("| crowd | shrink | spammers | accuracy | spread | votes/item |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key in sorted(got):
        kind, seed, shrink, share = key
        accs = [a for a, _ in got[key]]
        spent = [v for _, v in got[key]]
        print(f"| {kind} {seed} | {shrink:g} | {share:g} | {np.mean(accs):.3f} | "
              f"{max(accs) - min(accs):.3f} | {np.mean(spent):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
