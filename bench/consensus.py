"""Consensus quality: the dynamic rule against the methods a curator would otherwise use.

The peer is what crowd-kit users run: majority vote and Dawid-Skene over *every*
vote (the most a fixed design can know), and Dawid-Skene over a random ``k``
votes per item with ``k`` the dynamic rule's own mean (what the same budget buys
without choosing where to spend it). Dawid-Skene here is this project's
(``consensus/dawid_skene.py``, same EM as crowd-kit's; crowd-kit itself does not
install with current scikit-learn).

Data: face_sentiment (real, 4 classes, ../shared/testdata/crowd) and simulated
crowds shaped like the real sets the project is judged on (tests/crowd_sim.py):
a small binary set where every worker labels every item and many are near
chance, the same with the crowd's errors a shared lean (majority of all votes
fails there, as on the real set), and a 4-class fine-grained set with 10 votes
per item. Each is replayed in ``--orders`` random vote orders; ``--spammers``
adds that share of workers who always give one answer. Also per dataset: at
each threshold, the share of decided items that is right (what the threshold
promises and what it delivers). The dynamic rule's replays play the list
``--passes`` times (default: what ``synset consensus evaluate`` does), so the
items the last refit reopened get the votes they skipped, as in the web app.

    .venv/bin/python bench/consensus.py [--orders 10] [--quick] [--passes 2]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synset_builder.config.consensus import DynamicConfig  # noqa: E402
from synset_builder.consensus import DawidSkene, MajorityVote  # noqa: E402
from synset_builder.consensus.crowd_files import normalise, read_rows  # noqa: E402
from synset_builder.consensus.evaluate import PASSES  # noqa: E402
from synset_builder.consensus.replay import DynamicConsensus  # noqa: E402
from tests.crowd_sim import (  # noqa: E402
    biased_binary,
    fine_grained,
    near_chance_binary,
    shuffled,
    with_spammers,
)

FACES = ROOT / ".." / "shared" / "testdata" / "crowd" / "face_sentiment"
Data = tuple[list, dict, list]


def face_sentiment() -> Data:
    raw_truth = {item: label for item, label in read_rows(FACES / "truth.csv", 2)}
    votes, truth = normalise(read_rows(FACES / "answer.csv", 3), raw_truth)
    return votes, truth, sorted({v[2] for v in votes})


def accuracy(labels: dict, truth: dict) -> float:
    return float(np.mean([labels.get(i) == t for i, t in truth.items()]))


def fixed_k(votes: list, k: int, draw: int) -> list:
    rng = np.random.default_rng(1000 + draw)
    per_item: dict = {}
    for v in votes:
        per_item.setdefault(v[0], []).append(v)
    return [vs[j] for vs in per_item.values() for j in rng.permutation(len(vs))[:k]]


def run(name: str, data: Data, args: argparse.Namespace) -> None:
    votes, truth, classes = data
    if args.spammers:
        votes = with_spammers(votes, classes, args.spammers)
    t0 = time.process_time()
    mv = accuracy(MajorityVote().fit(votes, classes=classes).labels_, truth)
    ds = accuracy(DawidSkene().fit(votes, classes=classes).labels_, truth)
    peer_cpu = time.process_time() - t0
    per_item = len(votes) / len({v[0] for v in votes})
    accs, spent, expected = [], [], []
    right_at: dict[float, list[tuple[int, int]]] = {t: [] for t in args.thresholds}
    t0 = time.process_time()
    for order in range(args.orders):
        stream = shuffled(votes, order)
        model = DynamicConsensus(config=DynamicConfig()).replay(
            stream, classes=classes, passes=args.passes
        )
        accs.append(accuracy(model.labels_, truth))
        spent.append(float(np.mean(list(model.used_.values()))))
        expected.append(float(np.mean([max(p.values()) for p in model.probas_.values()])))
        for threshold in args.thresholds if order < args.threshold_orders else ():
            cfg = DynamicConfig(threshold=threshold)
            m = DynamicConsensus(config=cfg).replay(stream, classes=classes, passes=args.passes)
            decided = [i for i in truth if m.decided_.get(i)]
            right = sum(m.labels_[i] == truth[i] for i in decided)
            right_at[threshold].append((right, len(decided)))
    dyn_cpu = (time.process_time() - t0) / args.orders
    k = math.ceil(float(np.mean(spent)))
    dsk = np.mean([accuracy(DawidSkene().fit(fixed_k(votes, k, d), classes=classes).labels_,
                            truth) for d in range(5)])  # fmt: skip
    print(f"\n{name}: {len(truth)} items, {per_item:.1f} votes/item available"
          + (f", {args.spammers:.0%} spammers added" if args.spammers else ""))  # fmt: skip
    print(f"  {'method':<34} {'accuracy':>8} {'votes/item':>10}")
    print(f"  {'majority, all votes':<34} {mv:>8.3f} {per_item:>10.2f}")
    print(f"  {'dawid-skene, all votes':<34} {ds:>8.3f} {per_item:>10.2f}")
    print(f"  {f'dawid-skene, random {k} per item':<34} {dsk:>8.3f} {min(k, per_item):>10.2f}")
    spread = f"[{min(accs):.3f}, {max(accs):.3f}]"
    print(f"  {f'dynamic, {args.orders} orders, {args.passes} passes':<34} {np.mean(accs):>8.3f} "
          f"{np.mean(spent):>10.2f}  range {spread} (max-min {max(accs) - min(accs):.3f}), "
          f"believes {np.mean(expected):.3f}")  # fmt: skip
    print(f"  cpu: dynamic replay {dyn_cpu:.2f} s per order "
          f"({dyn_cpu / len(votes) * 1e6:.0f} us per vote offered); "
          f"majority + dawid-skene {peer_cpu:.2f} s")  # fmt: skip
    for threshold, pairs in right_at.items():
        right, total = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        share = right / total if total else float("nan")
        print(
            f"  threshold {threshold}: decided items right {share:.3f} "
            f"({total / max(len(pairs), 1) / len(truth):.0%} of items decided)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--spammers", type=float, default=0.0)
    parser.add_argument("--passes", type=int, default=PASSES, help="plays of the vote list")
    parser.add_argument("--quick", action="store_true", help="3 orders, one seed per crowd")
    args = parser.parse_args()
    if args.quick:
        args.orders = 3
    args.thresholds = (0.9, 0.95, 0.99, 0.995)
    args.threshold_orders = min(args.orders, 3)
    seeds = (0,) if args.quick else (0, 1, 2)
    sets: list[tuple[str, Callable[[], Data]]] = []
    if FACES.is_dir():
        sets.append(("face_sentiment (real, 4 classes)", face_sentiment))
    for s in seeds:
        sets.append((f"near-chance binary crowd, seed {s}", lambda s=s: near_chance_binary(s)))
    for s in seeds:
        sets.append((f"biased binary crowd, seed {s}", lambda s=s: biased_binary(s)))
    for s in seeds[:2]:
        sets.append((f"fine-grained 4-class crowd, seed {s}", lambda s=s: fine_grained(s)))
    for name, make in sets:
        run(name, make(), args)


if __name__ == "__main__":
    main()
