"""``synset consensus`` one synset at a time: what it reads, keeps and writes per synset.

A full recompute used to hold every vote and every consensus row of the project
in Python (gigabytes at ILSVRC scale; docs/benchmarks.md). It now makes two passes over the synsets,
each reading one synset's votes at a time:

1. the replay (:meth:`.replay.DynamicConsensus.next_group`), which leaves the
   skills, the exclusions and, per item, whether it was decided; what the refit
   needs of each vote goes into compact arrays (:class:`FitArrays`, 17 bytes a
   vote and 17 an item), in scratch files unless asked to stay in memory;
2. after the refit, every item's verdict from the final skills, written with one
   bulk upsert per synset (:func:`synset_rows`).

So memory is a few synsets' votes (the replay's reader holds two ahead) and one
refit chunk, whatever the size of the project (in memory, the arrays add their 17
bytes a vote).
"""

from __future__ import annotations

import threading
from array import array
from collections import defaultdict
from collections.abc import Callable, Generator, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Full, Queue
from typing import TypeVar

import numpy as np
from sqlalchemy import ColumnElement, Row, Select, false, select
from sqlalchemy.orm import Session

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import chunked_refit, hard_items, scratch
from synset_builder.consensus.base import Encoded
from synset_builder.consensus.dynamic import Verdict, after_requeue
from synset_builder.consensus.model import SkillState
from synset_builder.db.models import Candidate, Consensus, Vote
from synset_builder.decision import Decision

# (candidate, annotator, answer, cast at)
VoteRow4 = tuple[int, int, bool, datetime]
VoteRow = tuple[int, int, bool]
T = TypeVar("T")


def _by_synset(
    session: Session, stmt: Select, synsets: Sequence[int], row: Callable[[Row], T]
) -> Iterator[list[T]]:
    """Per synset of ``synsets`` (ascending), its rows of ``stmt`` (whose first column
    is the synset id, and which is ordered by it): one streamed query, not one per
    synset, each of which the planner may answer with a scan of the whole table."""
    result = session.execute(stmt, execution_options={"yield_per": 20_000})
    rows = iter(result)
    head = next(rows, None)
    for synset in synsets:
        got: list[T] = []
        while head is not None and head[0] < synset:
            head = next(rows, None)
        while head is not None and head[0] == synset:
            got.append(row(head))
            head = next(rows, None)
        yield got
    result.close()


# Synsets the replay's reader may hold ahead of it: one being read, these waiting.
READ_AHEAD = 2


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterator[T], depth: int = READ_AHEAD) -> Generator[T, None, None]:
    """``items`` read by a thread up to ``depth`` ahead of the consumer.

    The replay is one Python loop that waits for each synset's votes: at ILSVRC
    scale the database spends seconds producing 2.4M rows while the loop stands
    still. A thread that reads the next synsets meanwhile overlaps the two
    (psycopg waits for the server without the GIL). Only that thread touches
    ``items`` (and its session) until this generator is closed, which waits for
    it; at most ``depth`` synsets wait in between, so memory stays bounded.
    """
    queue: Queue[object] = Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(end)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pump, name="consensus-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            got = queue.get()
            if got is end:
                return
            if isinstance(got, _Failed):
                raise got.error
            yield got  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def synset_votes(session: Session, synsets: Sequence[int]) -> Iterator[list[VoteRow4]]:
    """Per synset of ``synsets`` (ascending), its votes in the order they were cast."""
    stmt = _votes_by_synset(synsets, Vote.created_at)
    return _by_synset(session, stmt, synsets, lambda r: (r[1], r[2], bool(r[3]), r[4]))


def synset_answers(session: Session, synsets: Sequence[int]) -> Iterator[list[VoteRow]]:
    """:func:`synset_votes` without the time of each vote (the replay's): a timestamp
    costs more to read than the three numbers beside it."""
    stmt = _votes_by_synset(synsets)
    return _by_synset(session, stmt, synsets, lambda r: (r[1], r[2], bool(r[3])))


def _votes_by_synset(synsets: Sequence[int], *extra: ColumnElement) -> Select:
    return (
        select(Candidate.synset_id, Vote.candidate_id, Vote.annotator_id, Vote.answer, *extra)
        .join(Candidate, Candidate.id == Vote.candidate_id)
        .where(Candidate.synset_id.between(synsets[0], synsets[-1]) if synsets else false())
        .order_by(Candidate.synset_id, Vote.id)
    )


# What a consensus row says, to compare with what the recompute would write.
RowNow = tuple[int, float, bool, str, str, int, str | None]  # id, p_yes, initial, decision,
# method, n_votes, reason


def synset_rows_now(session: Session, synsets: Sequence[int]) -> Iterator[list[RowNow]]:
    """Per synset, its consensus rows as they stand."""
    stmt = (
        select(Candidate.synset_id, Consensus.candidate_id, Consensus.p_yes, Consensus.initial,
               Consensus.decision, Consensus.method, Consensus.n_votes, Consensus.reason)
        .join(Candidate, Candidate.id == Consensus.candidate_id)
        .where(Candidate.synset_id.between(synsets[0], synsets[-1]) if synsets else false())
        .order_by(Candidate.synset_id)
    )  # fmt: skip
    return _by_synset(
        session, stmt, synsets, lambda r: (r[1], float(r[2]), bool(r[3]), r[4], r[5], r[6], r[7])
    )


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class FitArrays:
    """What the refit needs of every vote, a few bytes each: item, voter, answer; per
    item its id, synset and how its replay left it (:data:`.hard_items.WORDS`). In
    memory, or (``folder``) in scratch files there (:mod:`.scratch`), so that memory
    does not grow with the project: the replay appends a synset at a time, the refit
    reads back a chunk at a time."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder

        def column(name: str, dtype: type[np.generic]) -> scratch.Column:
            return scratch.Column(dtype, None if folder is None else folder / f"{name}.bin")

        self.item_ids = column("item_ids", np.int64)
        self.item_group = column("item_group", np.int64)
        self.word = column("word", np.int8)
        self.vote_item = column("vote_item", np.int64)
        self.vote_worker = column("vote_worker", np.int64)
        self.vote_label = column("vote_label", np.int8)

    def add(self, group: int, items: Mapping[Hashable, object]) -> None:
        """The items one synset's replay left (``_Item``: votes and verdict)."""
        base = len(self.item_ids)
        ids, words = array("q"), array("b")
        v_item, v_worker, v_label = array("q"), array("q"), array("b")
        for n, (cid, it) in enumerate(items.items(), base):
            ids.append(int(cid))  # type: ignore[call-overload]
            words.append(hard_items.WORDS.get(it.word, 2))  # type: ignore[attr-defined]
            for worker, label in it.votes:  # type: ignore[attr-defined]
                v_item.append(n)
                v_worker.append(int(worker))
                v_label.append(label)
        self.item_ids.extend(np.frombuffer(ids, dtype=np.int64))
        self.item_group.extend(np.full(len(ids), group, dtype=np.int64))
        self.word.extend(np.frombuffer(words, dtype=np.int8))
        self.vote_item.extend(np.frombuffer(v_item, dtype=np.int64))
        self.vote_worker.extend(np.frombuffer(v_worker, dtype=np.int64))
        self.vote_label.extend(np.frombuffer(v_label, dtype=np.int8))

    @property
    def n_votes(self) -> int:
        return len(self.vote_item)

    def votes(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Votes ``start`` to ``stop``: item index, voter, answer."""
        cols = (self.vote_item, self.vote_worker, self.vote_label)
        return cols[0].read(start, stop), cols[1].read(start, stop), cols[2].read(start, stop)

    def items(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Items ``start`` to ``stop``: candidate id, synset, word (:data:`.hard_items.WORDS`)."""
        cols = (self.item_ids, self.item_group, self.word)
        return cols[0].read(start, stop), cols[1].read(start, stop), cols[2].read(start, stop)

    def kept(self, excluded: Mapping[Hashable, str]) -> tuple[Encoded, np.ndarray, np.ndarray]:
        """The votes of annotators still counted, encoded; per item its group and
        word (:data:`.hard_items.WORDS`). Every vote at once: for the methods that fit them so
        (majority, Dawid-Skene), not the dynamic rule's refit."""
        workers = self.vote_worker.read()
        keep = ~np.isin(workers, np.array(sorted(int(w) for w in excluded), dtype=np.int64))
        items_used, item_idx = np.unique(self.vote_item.read()[keep], return_inverse=True)
        worker_ids, worker_idx = np.unique(workers[keep], return_inverse=True)
        ids = self.item_ids.read()[items_used]
        enc = Encoded(
            items=ids.tolist(),
            workers=worker_ids.tolist(),
            classes=[0, 1],
            item_idx=item_idx.astype(np.int64),
            worker_idx=worker_idx.astype(np.int64),
            label_idx=self.vote_label.read()[keep].astype(np.int64),
        )
        groups = self.item_group.read()[items_used]
        return enc, groups, self.word.read()[items_used]

    def refit(
        self, state: SkillState, gold: Mapping[int, bool], *, n_iter: int,
        chunk_votes: int = chunked_refit.CHUNK_VOTES, rounds: int = 0,
    ) -> None:  # fmt: skip
        """Refit the skills and priors on every counted vote (the replay's ``_refit``),
        ``chunk_votes`` votes at a time (:mod:`.chunked_refit`: the same floats), with
        ``rounds`` hard-items rounds (:mod:`.hard_items`); the chunks go to a scratch
        file beside the arrays when they are spilled."""
        excluded = np.array(sorted(int(w) for w in state.excluded), dtype=np.int64)
        store = None if self.folder is None else scratch.ChunkFile(self.folder / "chunks.bin")
        try:
            parts, workers, groups, calibrated = chunked_refit.chunks(
                self, excluded, gold, chunk_votes, store
            )
            if calibrated:
                chunked_refit.refit(state, parts, workers, groups, n_iter=n_iter, rounds=rounds)
        finally:
            if store is not None:
                store.close()
                (self.folder / "chunks.bin").unlink()  # type: ignore[operator]

    def close(self) -> None:
        for column in (self.item_ids, self.item_group, self.word, self.vote_item,
                       self.vote_worker, self.vote_label):  # fmt: skip
            column.close()


@dataclass
class Written:
    """What the final pass saw, for the records and the summary.

    ``log``: where a worker process (:mod:`.write_pool`) lists what it would add to
    ``measured``, ``(annotator, answer, p_no, p_yes)`` in order, so that the parent
    adds the same floats in the same order as one process would (:meth:`merge`).
    """

    cast: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    measured: dict[int, np.ndarray] = field(default_factory=dict)
    resolved_requeues: list[int] = field(default_factory=list)
    log: list[tuple[int, int, float, float]] | None = None

    def measure(self, annotator: int, answer: int, probs: Sequence[float]) -> None:
        """An excluded annotator's vote against the item's final verdict."""
        if self.log is not None:
            self.log.append((annotator, answer, float(probs[0]), float(probs[1])))
            return
        m = self.measured.setdefault(annotator, np.zeros((2, 2)))
        m[:, answer] += probs

    def merge(self, other: Written) -> None:
        """Add what a worker saw on the synsets after those already merged."""
        for annotator, n in other.cast.items():
            self.cast[annotator] += n
        for annotator, answer, p_no, p_yes in other.log or ():
            self.measure(annotator, answer, (p_no, p_yes))
        self.resolved_requeues.extend(other.resolved_requeues)


def _requeued(
    verdict: Verdict,
    open_requeues: list[tuple[int, datetime]],
    item_votes: list[tuple[int, int]],
    times: list[datetime],
    left_team: set[int],
    cfg: DynamicConfig,
    seen: Written,
) -> Verdict:
    """A requeued item's verdict: only votes since its first open requeue reopen the
    decision; the requeues resolve once it is closed again (noted in ``seen``)."""
    since = min(utc(created) for _, created in open_requeues)
    voters = {a for a, _ in item_votes}
    nobody = bool(left_team) and not (left_team - voters)
    fresh = sum(1 for t in times if utc(t) >= since)
    verdict = after_requeue(verdict, fresh, cfg, nobody_left=nobody)
    if verdict.word != Decision.pending:
        seen.resolved_requeues.extend(rq for rq, _ in open_requeues)
    return verdict


def synset_rows(
    votes: list[VoteRow4],
    now_rows: Mapping[int, RowNow],
    verdict_of: Callable[[int, list[tuple[int, int]], bool], Verdict | None],
    *,
    method: str,
    cfg: DynamicConfig,
    gold: Mapping[int, bool],
    excluded: Mapping[int, str],
    team: set[int],
    requeues: Mapping[int, list[tuple[int, datetime]]],
    seen: Written,
) -> list[dict[str, object]]:
    """The consensus rows of a synset that change: one per voted candidate (and kept
    rows for the rest), left out where the row already says the same, so running it
    again writes nothing.

    ``verdict_of(candidate, votes, initial)`` is the method's verdict from its
    votes (as ``(annotator, answer)``), None where it has none.
    """
    by_item: dict[int, list[tuple[int, int]]] = defaultdict(list)
    counted: dict[int, list[datetime]] = defaultdict(list)
    for cid, annotator, answer, created in votes:
        by_item[cid].append((annotator, int(answer)))
        seen.cast[annotator] += 1
        if annotator not in excluded:
            counted[cid].append(created)  # made UTC only where a requeue compares it
    left_team = team - set(excluded)
    stamp = datetime.now(UTC)
    out = []
    for cid in sorted(set(counted) | set(now_rows)):
        was = now_rows.get(cid)
        p_now, initial = (was[1], was[2]) if was else (0.5, False)
        item_votes = by_item.get(cid, [])
        verdict = verdict_of(cid, item_votes, initial) if item_votes else None
        if verdict is not None:
            for annotator, answer in item_votes:
                if annotator in excluded:
                    seen.measure(annotator, answer, verdict.probs)
        times = counted.get(cid, [])
        if cid in gold:
            verdict = Verdict("decided", int(gold[cid]), (1.0 - gold[cid], float(gold[cid])))
        elif verdict is None or not times:
            verdict = Verdict(Decision.pending, int(p_now > 0.5), (1.0 - p_now, p_now))
        if requeues.get(cid) and cid not in gold:
            verdict = _requeued(verdict, requeues[cid], item_votes, times, left_team, cfg, seen)
        decision = verdict.decision
        p_yes = float(verdict.probs[1])
        reason = verdict.reason if decision == Decision.undecided else None
        if was and was[1:] == (p_yes, initial, decision, method, len(times), reason):
            continue
        out.append({
            "candidate_id": cid, "p_yes": p_yes, "decision": decision, "method": method,
            "n_votes": len(times), "initial": initial, "reason": reason, "updated_at": stamp,
        })  # fmt: skip
    return out
