"""``synset consensus evaluate``: compare the methods on any crowd vote file.

Files are read as :mod:`.crowd_files` says (by position; rows a score cannot use
are left out and each kind is said in a note).

Majority and Dawid-Skene see every vote (or each item's first ``max_votes``);
``dynamic`` replays the votes in order and stops serving an item once it is
decided, so its ``mean_votes`` is what the dynamic rule would have paid. As the
web app serves the items a refit reopened again, the replay plays the votes it
skipped once more after its last refit (``passes=2``, :data:`PASSES`; ``1``:
stop at the end of the list): those items take the votes they would have got.

As a benchmark it can replay several vote orders and add spammers, because the
dynamic rule's cost and accuracy depend on the order votes arrive in, and its
point is to stay sound when some workers answer without looking:

* ``orders=1`` replays file order. ``orders=K>1`` replays K random permutations
  of the whole stream (each item's vote order and the interleaving of items),
  drawn one after another from ``numpy.random.default_rng(seed)``, so a seed
  names a fixed set of orders and the first K of K+1 orders are the same.
* ``spammers=F`` adds ``round(F x distinct workers)`` synthetic workers named
  ``__spam0``, ``__spam1``, ... (more leading underscores if a real worker's
  name starts that way). In a binary set they alternate always-yes and
  always-no; in a multi-class set each always gives one class, cycling through
  the sorted classes. Each votes once on every item. In file order their votes
  on an item come right after that item's first real vote, in spammer order, so
  they reach the dynamic rule while the item is still open; in random orders
  they are shuffled with the rest.
* Every method is scored on every order and the figures are averaged.
  Majority and Dawid-Skene use all votes, so without ``max_votes`` their scores
  barely move between orders; with it they keep each item's first N votes *in
  that order*, which does depend on it. Scoring them per order keeps one rule for
  all methods and costs one fit per order.

``dynamic`` also reports ``excluded_workers`` (real workers its exclusion rule
caught, mean per order) and, with spammers, ``excluded_spammers`` (the share of
them it caught): a robustness run says whether the rule saw them, not only what
they cost.

Scores per order: ``accuracy`` and ``expected_accuracy`` (the model's own mean
top posterior, i.e. what it believes its accuracy is) over the items with truth;
``mean_votes`` and ``decided`` over every item with a vote. An item is decided
when its top probability is the unique maximum (majority, Dawid-Skene: not a
tie) or when the dynamic model's ``decided_`` says so (posterior past the
threshold). Binary sets also get ``precision`` and ``recall`` of the positive
label over the items with truth; an order where one is undefined (nothing
predicted positive, say) is left out of its mean, and it is ``None`` if every
order leaves it undefined.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

import numpy as np

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import METHODS
from synset_builder.consensus.base import VoteRow
from synset_builder.consensus.crowd_files import (
    check_labels,
    clean,
    normalise,
    read_rows,
)
from synset_builder.consensus.replay import DynamicConsensus
from synset_builder.errors import InvalidInput

MAX_SPAMMERS = 5.0
# Each order is a full replay (seconds on a few thousand votes): a typo of 10**6
# would run for days without a word.
MAX_ORDERS = 1000
# Plays of the vote list (DynamicConsensus.more_passes): the second serves what the
# last refit reopened; more add little (docs/benchmarks.md).
PASSES = 2
MAX_PASSES = 10


@dataclass(frozen=True)
class Evaluation:
    """One method's scores, averaged over the replayed vote orders."""

    method: str
    accuracy: float
    mean_votes: float
    items: int  # items with truth that got at least one vote
    accuracy_min: float
    accuracy_max: float
    decided: float
    expected_accuracy: float
    binary: bool = False
    precision: float | None = None  # binary sets only
    recall: float | None = None
    # Dynamic only: real workers the rule excluded (mean per order), and the share of
    # the added spammers it excluded (None without spammers).
    excluded_workers: float | None = None
    excluded_spammers: float | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "method": self.method,
            "accuracy": self.accuracy,
            "accuracy_min": self.accuracy_min,
            "accuracy_max": self.accuracy_max,
            "mean_votes": self.mean_votes,
            "decided": self.decided,
            "expected_accuracy": self.expected_accuracy,
            "items": self.items,
        }
        if self.binary:
            out["precision"] = self.precision
            out["recall"] = self.recall
        if self.excluded_workers is not None:
            out["excluded_workers"] = self.excluded_workers
        if self.excluded_spammers is not None:
            out["excluded_spammers"] = self.excluded_spammers
        return out


@dataclass(frozen=True)
class Score:
    """One method on one vote order."""

    accuracy: float
    mean_votes: float
    items: int
    decided: float
    expected_accuracy: float
    precision: float | None
    recall: float | None
    excluded: tuple[int, int] | None = None  # dynamic: (real workers, spammers) excluded


def cap_votes(votes: Sequence[VoteRow], max_votes: int | None) -> list[VoteRow]:
    """Each item's first ``max_votes`` votes, in the order given."""
    if max_votes is None:
        return list(votes)
    seen: dict[Hashable, int] = {}
    out = []
    for row in votes:
        seen[row[0]] = seen.get(row[0], 0) + 1
        if seen[row[0]] <= max_votes:
            out.append(row)
    return out


def spam_votes(
    votes: Sequence[VoteRow], fraction: float, answers: Sequence[Hashable]
) -> dict[Hashable, list[VoteRow]]:
    """Per item (in order of first vote), one vote from each synthetic spammer.

    Spammer ``k`` always answers ``answers[k % len(answers)]``; names get extra
    leading underscores until no real worker's name starts like them.
    """
    workers = {str(w) for _, w, _ in votes}
    count = round(fraction * len(workers))
    prefix = "__spam"
    while any(w.startswith(prefix) for w in workers):
        prefix = "_" + prefix
    spammers = [(f"{prefix}{k}", answers[k % len(answers)]) for k in range(count)]
    items = dict.fromkeys(item for item, _, _ in votes)
    return {item: [(item, name, label) for name, label in spammers] for item in items}


def vote_orders(
    votes: Sequence[VoteRow], spam: Mapping[Hashable, list[VoteRow]], orders: int, seed: int
) -> Iterator[list[VoteRow]]:
    """File order with spam after each item's first vote; or ``orders`` permutations."""
    stream: list[VoteRow] = []
    seen: set[Hashable] = set()
    for row in votes:
        stream.append(row)
        if row[0] not in seen:
            seen.add(row[0])
            stream.extend(spam.get(row[0], ()))
    if orders == 1:
        yield stream
        return
    rng = np.random.default_rng(seed)
    for _ in range(orders):
        yield [stream[i] for i in rng.permutation(len(stream))]


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def score_order(
    name: str,
    votes: Sequence[VoteRow],
    truth: Mapping[Hashable, Hashable],
    *,
    classes: list[Hashable],
    binary: bool,
    max_votes: int | None,
    config: DynamicConfig,
    passes: int = PASSES,
    spammers: Collection[Hashable] = (),
) -> Score:
    """Fit (or replay) one method on one vote order and score it against the truth;
    ``spammers``: the synthetic workers' names, to count the ones the rule caught."""
    excluded = None
    if name == "dynamic":
        model = DynamicConsensus(config=config).replay(votes, classes=classes, passes=passes)
        used = model.used_
        decided = [bool(d) for d in model.decided_.values()]
        caught = sum(1 for w in model.excluded_ if w in spammers)
        excluded = (len(model.excluded_) - caught, caught)
    else:
        taken = cap_votes(votes, max_votes)
        model = METHODS[name](config).fit(taken, classes=classes)
        used = {}
        for item, _, _ in taken:
            used[item] = used.get(item, 0) + 1
        decided = []
        for probs in model.probas_.values():
            top = max(probs.values())
            decided.append(sum(p == top for p in probs.values()) == 1)
    scored = [item for item in truth if item in model.labels_]
    if not scored:
        raise InvalidInput("No item of the truth file has a vote in the vote file.")
    said = {item: model.labels_[item] for item in scored}
    hits = sum(said[item] == truth[item] for item in scored)
    true_pos = sum(said[item] is True and truth[item] is True for item in scored)
    return Score(
        accuracy=hits / len(scored),
        mean_votes=sum(used.values()) / max(len(used), 1),
        items=len(scored),
        decided=sum(decided) / max(len(decided), 1),
        expected_accuracy=fmean(max(model.probas_[item].values()) for item in scored),
        precision=_ratio(true_pos, sum(said[i] is True for i in scored)) if binary else None,
        recall=_ratio(true_pos, sum(truth[i] is True for i in scored)) if binary else None,
        excluded=excluded,
    )


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return fmean(known) if known else None


def summarise(name: str, scores: Sequence[Score], binary: bool, spammers: int = 0) -> Evaluation:
    accuracy = [s.accuracy for s in scores]
    caught = [s.excluded for s in scores if s.excluded is not None]
    return Evaluation(
        method=name,
        accuracy=fmean(accuracy),
        mean_votes=fmean(s.mean_votes for s in scores),
        items=scores[-1].items,
        accuracy_min=min(accuracy),
        accuracy_max=max(accuracy),
        decided=fmean(s.decided for s in scores),
        expected_accuracy=fmean(s.expected_accuracy for s in scores),
        binary=binary,
        precision=_mean([s.precision for s in scores]),
        recall=_mean([s.recall for s in scores]),
        excluded_workers=fmean(real for real, _ in caught) if caught else None,
        excluded_spammers=fmean(s / spammers for _, s in caught) if caught and spammers else None,
    )


def evaluate(
    votes_path: Path,
    truth_path: Path,
    *,
    methods: Sequence[str] = ("majority", "dawid-skene", "dynamic"),
    max_votes: int | None = None,
    config: DynamicConfig | None = None,
    orders: int = 1,
    seed: int = 0,
    spammers: float = 0.0,
    passes: int = PASSES,
    notes: list[str] | None = None,
) -> list[Evaluation]:
    """Per method: accuracy on the items with truth and votes used per item, and more.

    See the module docstring for how orders and spammers are made and what each
    figure means. ``notes``, if given, gets one line per kind of row left out
    (:func:`clean`, :func:`check_labels`).
    """
    for name in methods:
        if name not in METHODS:
            raise InvalidInput(f"Unknown method {name!r}; choose from {', '.join(METHODS)}.")
    if max_votes is not None and max_votes < 1:
        raise InvalidInput("--max-votes must be at least 1.")
    if not 1 <= orders <= MAX_ORDERS:
        raise InvalidInput(f"--orders must lie in [1, {MAX_ORDERS}], not {orders}.")
    if not 1 <= passes <= MAX_PASSES:
        raise InvalidInput(f"--passes must lie in [1, {MAX_PASSES}], not {passes}.")
    if not 0.0 <= spammers <= MAX_SPAMMERS:
        raise InvalidInput(f"--spammers must lie in [0, {MAX_SPAMMERS:g}], not {spammers}.")
    rows, raw_truth, said = clean(read_rows(votes_path, 3), read_rows(truth_path, 2))
    votes, truth = normalise(rows, raw_truth)
    said += check_labels(votes, truth)
    if notes is not None:
        notes.extend(said)
    binary = all(isinstance(label, bool) for _, _, label in votes)
    classes: list[Hashable] = [False, True] if binary else sorted({v[2] for v in votes})
    cfg = config or DynamicConfig()
    if max_votes is not None:
        cfg = cfg.with_options(max_votes=max_votes)
    spam = spam_votes(votes, spammers, [True, False] if binary else classes)
    fake = {w for rows in spam.values() for _, w, _ in rows}
    scores: dict[str, list[Score]] = {name: [] for name in methods}
    for stream in vote_orders(votes, spam, orders, seed):
        for name in methods:
            one = score_order(name, stream, truth, classes=classes, binary=binary,
                              max_votes=max_votes, config=cfg, passes=passes,
                              spammers=fake)  # fmt: skip
            scores[name].append(one)
    return [summarise(name, scores[name], binary, len(fake)) for name in methods]
