"""Consensus quality benchmark: dynamic consensus vs fixed 10-vote majority.

Simulates synsets of different difficulty (annotators with accuracies from 0.55
to 0.95, some spammers who always say yes or answer at random, 10-50% true
positives among candidates; hard synsets pull every annotator toward chance),
then reports per method the precision and recall of the accepted images and the
votes spent per accepted image. Also runs ``synset consensus evaluate``'s code on
the real face_sentiment crowd data.

The dynamic rule is simulated as the web app serves: each synset's initial
subset first (10 votes each), then every other candidate one vote per round
until the posterior passes the threshold or the cap; skills are refitted every
``refit_every`` votes, as a periodic ``synset consensus`` would.

    .venv/bin/python bench/consensus.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synset_builder.consensus import DawidSkene, DynamicConfig, DynamicConsensus, MajorityVote
from synset_builder.consensus.evaluate import evaluate

FACES = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata" / "crowd"


@dataclass(frozen=True)
class World:
    truth: dict[tuple[int, int], bool]  # (synset, item) -> is a true positive
    accuracy: np.ndarray  # synsets x annotators: P(correct answer)
    spammers: dict[int, str]  # annotator -> "yes" | "random"


def make_world(
    rng: np.random.Generator, n_synsets: int, n_items: int, n_workers: int, hardest: float
) -> World:
    base = rng.uniform(0.55, 0.95, n_workers)
    spam_ids = rng.choice(n_workers, size=max(1, n_workers // 10), replace=False)
    spammers = {int(w): ("yes" if k % 2 == 0 else "random") for k, w in enumerate(spam_ids)}
    difficulty = np.linspace(0.0, hardest, n_synsets)  # 0 = easy, 0.3 = 30% closer to chance
    accuracy = 0.5 + (base[None, :] - 0.5) * (1.0 - difficulty[:, None])
    truth = {}
    for s in range(n_synsets):
        rate = rng.uniform(0.1, 0.5)
        for i in range(n_items):
            truth[(s, i)] = bool(rng.random() < rate)
    return World(truth=truth, accuracy=accuracy, spammers=spammers)


def answer(world: World, rng: np.random.Generator, item: tuple[int, int], w: int) -> bool:
    kind = world.spammers.get(w)
    if kind == "yes":
        return True
    if kind == "random":
        return bool(rng.random() < 0.5)
    right = rng.random() < world.accuracy[item[0], w]
    return world.truth[item] if right else not world.truth[item]


def vote_stream(world: World, rng: np.random.Generator, per_item: int, initial: int):
    """Every item's ``per_item`` votes in serving order: initial subsets, then rounds."""
    n_workers = world.accuracy.shape[1]
    voters = {item: rng.choice(n_workers, per_item, replace=False) for item in world.truth}
    stream = []
    by_synset: dict[int, list[tuple[int, int]]] = {}
    for item in world.truth:
        by_synset.setdefault(item[0], []).append(item)
    for items in by_synset.values():
        for item in items[:initial]:
            stream += [(item, int(w), answer(world, rng, item, int(w))) for w in voters[item]]
    for r in range(per_item):
        for items in by_synset.values():
            for item in items[initial:]:
                w = int(voters[item][r])
                stream.append((item, w, answer(world, rng, item, w)))
    return stream


def score(world: World, accepted: set, votes_spent: int) -> dict[str, float]:
    positives = {i for i, t in world.truth.items() if t}
    true_acc = len(accepted & positives)
    return {
        "precision": true_acc / max(len(accepted), 1),
        "recall": true_acc / max(len(positives), 1),
        "votes_per_accepted": votes_spent / max(len(accepted), 1),
        "votes_per_item": votes_spent / len(world.truth),
    }


def run_simulation(args: argparse.Namespace) -> Iterator[tuple[str, dict[str, float], float]]:
    rng = np.random.default_rng(args.seed)
    world = make_world(rng, args.synsets, args.items, args.workers, args.hardest)
    stream = vote_stream(world, rng, 10, 10)
    groups = {item: item[0] for item in world.truth}

    t0 = time.perf_counter()
    mv = MajorityVote().fit(stream)
    accepted = {i for i, p in mv.probas_.items() if p.get(True, 0.0) > 0.5}
    yield "majority, 10 votes", score(world, accepted, len(stream)), time.perf_counter() - t0

    t0 = time.perf_counter()
    ds = DawidSkene().fit(stream, classes=[False, True])
    accepted = {i for i, p in ds.probas_.items() if p[True] > 0.5}
    yield "dawid-skene, 10 votes", score(world, accepted, len(stream)), time.perf_counter() - t0

    variants = [(t, False) for t in (0.95, 0.99, 0.995)] + [(0.99, True)]
    for threshold, temper in variants:
        cfg = DynamicConfig(threshold=threshold, max_votes=10, temper=temper)
        t0 = time.perf_counter()
        dyn = DynamicConsensus(config=cfg, refit_every=args.refit_every).replay(
            stream, groups=groups, classes=[False, True]
        )
        # Accepted: the final posterior passes the threshold (as `synset consensus` decides).
        accepted = {i for i, p in dyn.probas_.items() if p[True] >= threshold}
        spent = sum(dyn.used_.values())
        name = f"dynamic, threshold {threshold}" + (", tempered" if temper else "")
        yield name, score(world, accepted, spent), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--hardest", type=float, default=0.3, help="how far the hardest synset pulls toward chance"
    )
    args = parser.parse_args()
    args.synsets, args.items, args.workers = (6, 150, 30) if args.quick else (12, 250, 60)
    args.refit_every = 500 if args.quick else 1000
    print(f"simulation: {args.synsets} synsets x {args.items} candidates, {args.workers} "
          f"annotators (10% spammers), hardest {args.hardest}, seed {args.seed}")  # fmt: skip
    print(f"{'method':<34} {'precision':>9} {'recall':>7} {'votes/accepted':>14} "
          f"{'votes/item':>10} {'seconds':>8}")  # fmt: skip
    for name, m, secs in run_simulation(args):
        cells = f"{m['precision']:>9.4f} {m['recall']:>7.4f} {m['votes_per_accepted']:>14.2f}"
        print(f"{name:<34} {cells} {m['votes_per_item']:>10.2f} {secs:>8.2f}", flush=True)
    faces = FACES / "face_sentiment"
    if faces.is_dir():
        print("\nface_sentiment (4 classes, MTurk): accuracy, votes per item")
        for r in evaluate(faces / "answer.csv", faces / "truth.csv"):
            print(f"{r.method:<34} {r.accuracy:>9.4f} {r.mean_votes:>10.2f}")


if __name__ == "__main__":
    main()
