"""``synset consensus``'s refit over the votes in chunks: memory bounded per chunk.

:meth:`.model.SkillState.refit` runs EM (:func:`.confusion_em.fit_em`) over arrays
of every vote at once: a few hundred bytes a vote in temporaries, gigabytes at
ImageNet's size. This is the same computation a run of whole items at a time. It
is exact, not an approximation: every sum over votes is an ``np.add.at`` that adds
in vote order, so adding chunk after chunk adds the same floats in the same order;
every other step is per vote, per item or per annotator. A test holds it equal,
bit for bit, to :meth:`.model.SkillState.refit`.

What stays between iterations: per kept vote its item (within its chunk), voter
and answer (9 bytes), per item its gold answer, group, word (how it closed), weight
and posterior (30 bytes), in a list or, for ``synset consensus``, in a scratch file
(:class:`.scratch.ChunkFile`) that each pass reads a chunk at a time; per
annotator and per group a few numbers. The chunks are built from a
:class:`VoteSource` read a run of votes at a time, so nothing here holds every
vote at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from synset_builder.consensus import hard_items
from synset_builder.consensus.confusion_em import normalise, worker_log_rows
from synset_builder.consensus.model import PRIOR_FLOOR, SkillState

ALPHA = 1e-3  # SkillState.refit's EM settings
PRIOR_ALPHA = 2.0
TOL = 1e-5
CHUNK_VOTES = 200_000
TAIL_VOTES = 1024  # read past a run's end to reach its last item's end


@dataclass
class Chunk:
    """Whole items and their kept votes (indices local to the chunk's items)."""

    item: np.ndarray  # per vote: int32 index into this chunk's items
    worker: np.ndarray  # per vote: int32 index into the refit's workers
    label: np.ndarray  # per vote: int8
    gold: np.ndarray  # per item: int8, -1 where not gold
    group: np.ndarray  # per item: int32 group index
    word: np.ndarray  # per item: int8, how its replay left it (hard_items.WORDS)
    calibration: np.ndarray  # per item: float64 weight in [0, 1] (fit_em's calibration)
    probas: np.ndarray  # per item x class: the current posterior

    def weight(self) -> np.ndarray:
        """Per item how much it measures the voters: its weight, gold items fully."""
        return np.maximum(self.calibration, (self.gold >= 0).astype(float))

    def per_vote(self, confusion: np.ndarray) -> np.ndarray:
        """``confusion_em.vote_loglik`` at temperature 1, as ``fit_em`` computes it."""
        return worker_log_rows(confusion)[self.worker, :, self.label]

    def log_post(self, confusion: np.ndarray, priors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_post = np.log(priors[self.group])
        per_vote = self.per_vote(confusion)
        np.add.at(log_post, self.item, per_vote)
        return log_post, per_vote

    def credit(self, log_post: np.ndarray, per_vote: np.ndarray) -> np.ndarray:
        """Leave-one-out credit, gold clamped, only on calibration items (``_credit``)."""
        soft = normalise(log_post[self.item] - per_vote)
        known = self.gold[self.item] >= 0
        if known.any():
            soft[known] = 0.0
            soft[known, self.gold[self.item][known]] = 1.0
        return soft * self.weight()[self.item][:, None]


class VoteSource(Protocol):
    """Per vote its item (an index into the items, never decreasing), voter and answer;
    per item its id, group and word (0 pending, 1 decided, 2 undecided:
    :class:`.synset_pass.FitArrays`),
    read by range."""

    @property
    def n_votes(self) -> int: ...

    def votes(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def items(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


class ChunkSink(Protocol):
    """Where the chunks go: a list, or a :class:`.scratch.ChunkFile`; either is read
    again once per EM pass."""

    def append(self, chunk: Chunk, /) -> None: ...

    def __iter__(self) -> Iterator[Chunk]: ...


def _kept_ids(source: VoteSource, excluded: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The kept voters' ids and their items' groups, sorted: ``np.unique`` over every
    kept vote, taken ``size`` votes at a time."""
    workers = np.empty(0, dtype=np.int64)
    groups = np.empty(0, dtype=np.int64)
    for start in range(0, source.n_votes, size):
        item, worker, _ = source.votes(start, start + size)
        keep = ~np.isin(worker, excluded)
        workers = np.union1d(workers, worker[keep])
        used = np.unique(item[keep])
        if len(used):
            _, group, _ = source.items(int(used[0]), int(used[-1]) + 1)
            groups = np.union1d(groups, group[used - used[0]])
    return workers, groups


def _runs(source: VoteSource, size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The votes in runs of ``size``, each run carried on to its last item's end."""
    n, start = source.n_votes, 0
    while start < n:
        end = min(start + size, n)
        parts = [source.votes(start, end)]
        last = parts[0][0][-1]
        while end < n:  # end at an item's boundary (an item has a few votes)
            more = source.votes(end, min(end + TAIL_VOTES, n))
            k = int(np.searchsorted(more[0], last, side="right"))
            parts.append((more[0][:k], more[1][:k], more[2][:k]))
            end += k
            if k < len(more[0]):
                break
        if len(parts) == 1:
            yield parts[0]
        else:
            yield tuple(np.concatenate(col) for col in zip(*parts, strict=True))  # type: ignore[misc]
        start = end


def chunks(
    source: VoteSource,
    excluded: np.ndarray,
    gold: Mapping[int, bool],
    size: int = CHUNK_VOTES,
    into: ChunkSink | None = None,
) -> tuple[ChunkSink, np.ndarray, np.ndarray, bool]:
    """The kept votes in chunks of whole items, appended to ``into`` (default: a new
    list); the workers' ids and the groups' ids (sorted, as ``FitArrays.kept``
    indexes them); whether any item calibrates (without one there is nothing to fit).
    Reads ``source`` twice, a run of votes at a time."""
    out: ChunkSink = [] if into is None else into
    workers, groups = _kept_ids(source, excluded, size)
    gold_ids = np.array(sorted(gold), dtype=np.int64)
    gold_yes = np.array([gold[g] for g in gold_ids.tolist()], dtype=np.int8)
    calibrated = False
    for vote_item, vote_worker, vote_label in _runs(source, size):
        mask = ~np.isin(vote_worker, excluded)
        used, local = np.unique(vote_item[mask], return_inverse=True)
        if not len(used):
            continue
        item_ids, item_group, word = source.items(int(used[0]), int(used[-1]) + 1)
        ids = item_ids[used - used[0]]
        at = np.minimum(np.searchsorted(gold_ids, ids), max(len(gold_ids) - 1, 0))
        hit = gold_ids[at] == ids if len(gold_ids) else np.zeros(len(ids), dtype=bool)
        chunk = Chunk(
            item=local.astype(np.int32),
            worker=np.searchsorted(workers, vote_worker[mask]).astype(np.int32),
            label=vote_label[mask].astype(np.int8),
            gold=np.where(hit, gold_yes[at] if len(gold_ids) else -1, -1).astype(np.int8),
            group=np.searchsorted(groups, item_group[used - used[0]]).astype(np.int32),
            word=word[used - used[0]].astype(np.int8),
            calibration=(word[used - used[0]] == 1).astype(float),
            probas=np.zeros((len(used), 2)),
        )
        calibrated = calibrated or bool(chunk.calibration.any())
        out.append(chunk)
    return out, workers, groups, calibrated


def _m_step(
    parts: Iterator[tuple[Chunk, np.ndarray]], state: SkillState, n_workers: int, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """``confusion_em.m_step`` with the template as target: confusions and priors,
    from each chunk's credit (``soft``) and posteriors (its ``probas``)."""
    counts = np.zeros((n_workers, 2, 2))
    priors = np.full((n_groups, 2), PRIOR_ALPHA)
    for chunk, soft in parts:
        np.add.at(counts, (chunk.worker, slice(None), chunk.label), soft)
        np.add.at(priors, chunk.group, chunk.probas * chunk.weight()[:, None])
    confusion = counts + ALPHA + state.shrink * state.newcomer[None, :, :]
    confusion /= confusion.sum(axis=2, keepdims=True)
    priors /= priors.sum(axis=1, keepdims=True)
    return confusion, priors


def _first(chunk: Chunk) -> np.ndarray:
    """``fit_em``'s start: vote shares, and leave-one-out shares as the credit."""
    counts = np.zeros((len(chunk.gold), 2))
    np.add.at(counts, (chunk.item, chunk.label), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    probas = np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / 2)
    known_items = chunk.gold >= 0
    if known_items.any():
        probas[known_items] = 0.0
        probas[known_items, chunk.gold[known_items]] = 1.0
    chunk.probas[:] = probas
    known = chunk.gold[chunk.item] >= 0
    n_others = totals[chunk.item] - 1
    own = np.zeros((len(chunk.label), 2))
    own[np.arange(len(chunk.label)), chunk.label] = 1.0
    others = counts[chunk.item] - own
    soft = np.where(n_others > 0, others / np.maximum(n_others, 1), 1.0 / 2)
    soft[known] = probas[chunk.item][known]
    return soft * chunk.weight()[chunk.item][:, None]


def _e_steps(
    parts: Iterable[Chunk], confusion: np.ndarray, priors: np.ndarray, delta: list[float]
) -> Iterator[tuple[Chunk, np.ndarray]]:
    """``fit_em``'s E-step chunk by chunk: new posteriors (gold clamped) in place,
    the largest change into ``delta``, and each chunk's credit for the M-step."""
    for chunk in parts:
        log_post, per_vote = chunk.log_post(confusion, priors)
        new = normalise(log_post)
        known = chunk.gold >= 0
        if known.any():
            new[known] = 0.0
            new[known, chunk.gold[known]] = 1.0
        if len(new):
            delta[0] = max(delta[0], float(np.abs(new - chunk.probas).max()))
        chunk.probas[:] = new
        yield chunk, chunk.credit(log_post, per_vote)


def refit(state: SkillState, parts: Iterable[Chunk], workers: np.ndarray, groups: np.ndarray,
          *, n_iter: int, rounds: int = 0) -> None:  # fmt: skip
    """:func:`.hard_items.refit` over ``parts``: the plain refit on the decided items,
    then ``rounds`` rounds that learn each group's hard share and refit on every
    closed item weighted by how ordinary it looks. New soft counts, priors, shares."""
    state.hard = {}
    em = _fit(state, parts, workers, groups, n_iter=n_iter)
    names = groups.tolist()
    for _ in range(rounds):
        arrays = hard_items.state_arrays(state, workers.tolist(), names)
        shares = hard_items.Shares(len(names))
        for chunk in parts:
            vote = (chunk.item, chunk.worker, chunk.label)
            r, eligible, weight = hard_items.assess(arrays, vote, chunk.group, chunk.word)
            shares.add(r, eligible, chunk.group)
            chunk.calibration[:] = weight  # written back to the chunk file
        shares.into(state, names)
        em = _fit(state, parts, workers, groups, n_iter=n_iter, warm=em)


def _fit(state: SkillState, parts: Iterable[Chunk], workers: np.ndarray, groups: np.ndarray,
         *, n_iter: int, warm: tuple[np.ndarray, np.ndarray] | None = None,
         ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:meth:`.model.SkillState.refit` over ``parts``: new soft counts and priors.
    Returns EM's confusions and priors; ``warm``: an earlier fit's, to start from
    (with the chunks' posteriors as it left them), as ``fit_em``'s ``warm``."""
    n_workers, n_groups = len(workers), len(groups)
    if warm is None:
        confusion, priors = _m_step(((c, _first(c)) for c in parts), state, n_workers, n_groups)
    else:
        confusion, priors = warm
    for _ in range(n_iter):
        delta = [0.0]
        confusion, priors = _m_step(
            _e_steps(parts, confusion, priors, delta), state, n_workers, n_groups
        )
        if delta[0] < TOL:
            break
    soft = np.zeros((n_workers, 2, 2))
    sums = np.full((n_groups, 2), 2.0)
    for chunk in parts:
        log_post, per_vote = chunk.log_post(confusion, priors)
        credit = normalise(log_post[chunk.item] - per_vote)
        credit *= chunk.calibration[chunk.item][:, None]  # x 1.0 is exact
        credit[chunk.gold[chunk.item] >= 0] = 0.0
        np.add.at(soft, (chunk.worker, slice(None), chunk.label), credit)
        log_lik = np.zeros((len(chunk.gold), 2))
        np.add.at(log_lik, chunk.item, chunk.per_vote(confusion))
        np.add.at(sums, chunk.group, normalise(log_lik))
    state.counts = {int(w): soft[j].tolist() for j, w in enumerate(workers.tolist())}
    floored = np.maximum(sums / sums.sum(axis=1, keepdims=True), PRIOR_FLOOR)
    state.priors = {int(g): [float(v) for v in p / p.sum()]
                    for g, p in zip(groups.tolist(), floored, strict=True)}  # fmt: skip
    state._log_rows.clear()
    return confusion, priors
