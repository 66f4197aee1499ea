"""Simulated crowds of the kinds the consensus must survive, for tests and bench/consensus.py.

Real crowd sets this project is judged on are not shipped (only face_sentiment
is); these generators imitate their shape instead of their numbers, so nothing
is tuned to one file:

* :func:`near_chance_binary`: every worker labels every item (like a small
  expert-recruited binary set); many workers near chance, some good, each with
  a yes/no bias; a quarter of the items fool nearly everyone. The file is
  ordered worker by worker.
* :func:`fine_grained`: several similar classes (dog breeds), a fixed number of
  votes per item from a large pool with skewed activity; errors go mostly to
  the one look-alike class; some items are hard for everyone.

Both return ``(votes, truth, classes)`` with votes as ``(item, worker, label)``.
"""

from __future__ import annotations

import numpy as np

Votes = list[tuple[int, str, object]]


def near_chance_binary(
    seed: int = 0, n_items: int = 108, n_workers: int = 39, positive: float = 0.44
) -> tuple[Votes, dict[int, bool], list[bool]]:
    return _binary_crowd(seed, n_items, n_workers, positive)


def biased_binary(
    seed: int = 0, n_items: int = 108, n_workers: int = 39, positive: float = 0.44
) -> tuple[Votes, dict[int, bool], list[bool]]:
    """Like :func:`near_chance_binary`, but the crowd leans one way together.

    The real binary set the issue names scores 0.759 by majority of all votes
    and 0.898 by Dawid-Skene: its workers' errors are mostly a shared lean,
    which a model of each worker corrects and a head count cannot. Here the
    near-chance workers lean to "yes" on average (bias mean 0.12), the good ones
    are better (0.85-0.98) and fewer items fool everyone (15%, hardness up to
    0.9, so none is reversed for everyone).
    """
    return _binary_crowd(seed, n_items, n_workers, positive, mix=(0.45, 0.25, 0.3),
                         good=(0.85, 0.98), bias=(0.12, 0.2), hard=(0.15, 0.9))  # fmt: skip


def _binary_crowd(
    seed: int,
    n_items: int,
    n_workers: int,
    positive: float,
    *,
    mix: tuple[float, float, float] = (0.45, 0.35, 0.2),  # near chance, fair, good
    good: tuple[float, float] = (0.8, 0.95),
    bias: tuple[float, float] = (0.0, 0.2),  # mean, sd; + says yes more often
    hard: tuple[float, float] = (0.25, 1.2),  # share of hard items, their top hardness
) -> tuple[Votes, dict[int, bool], list[bool]]:
    rng = np.random.default_rng(seed)
    truth = {i: bool(rng.random() < positive) for i in range(n_items)}
    kind = rng.choice(3, n_workers, p=list(mix))
    lows = np.array([0.4, 0.6, good[0]])[kind]
    highs = np.array([0.6, 0.78, good[1]])[kind]
    accuracy = rng.uniform(lows, highs)
    lean = rng.normal(bias[0], bias[1], n_workers)
    is_hard = rng.random(n_items) < hard[0]
    hardness = np.where(is_hard, rng.uniform(0.6, hard[1], n_items), rng.uniform(0.0, 0.3, n_items))
    votes: Votes = []
    for w in range(n_workers):
        for i in range(n_items):
            a = 0.5 + (accuracy[w] - 0.5) * (1.0 - hardness[i])
            a = min(max(a + (lean[w] if truth[i] else -lean[w]), 0.02), 0.98)
            right = rng.random() < a
            votes.append((i, f"w{w}", truth[i] if right else not truth[i]))
    return votes, truth, [False, True]


def fine_grained(
    seed: int = 0, n_items: int = 800, n_workers: int = 100, per_item: int = 10, k: int = 4
) -> tuple[Votes, dict[int, str], list[str]]:
    rng = np.random.default_rng(seed)
    classes = [f"breed{c}" for c in range(k)]
    truth_ix = {i: int(rng.integers(k)) for i in range(n_items)}
    accuracy = np.clip(rng.beta(4, 2, n_workers) * 0.8 + 0.2, 0.3, 0.97)
    look_alike = {c: c + 1 if c % 2 == 0 else c - 1 for c in range(k)}
    hardness = np.where(
        rng.random(n_items) < 0.2, rng.uniform(0.5, 1.0, n_items), rng.uniform(0, 0.25, n_items)
    )
    activity = rng.pareto(1.2, n_workers) + 0.1
    activity /= activity.sum()
    votes: Votes = []
    for i in range(n_items):
        for w in rng.choice(n_workers, per_item, replace=False, p=activity):
            a = 1 / k + (accuracy[w] - 1 / k) * (1 - hardness[i])
            if rng.random() < a:
                label = truth_ix[i]
            elif rng.random() < 0.7:
                label = look_alike[truth_ix[i]]
            else:
                label = int(rng.integers(k))
            votes.append((i, f"w{w}", classes[label]))
    return votes, {i: classes[c] for i, c in truth_ix.items()}, classes


def with_spammers(votes: Votes, classes: list, share: float) -> Votes:
    """Add ``share`` x workers who always give one answer (cycling through the classes)."""
    items = list(dict.fromkeys(v[0] for v in votes))
    n = round(share * len({v[1] for v in votes}))
    return votes + [(i, f"spam{s}", classes[s % len(classes)]) for s in range(n) for i in items]


def shuffled(votes: Votes, seed: int) -> Votes:
    order = np.random.default_rng(seed).permutation(len(votes))
    return [votes[j] for j in order]
