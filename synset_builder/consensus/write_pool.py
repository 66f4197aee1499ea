"""``synset consensus``'s final pass in several processes, synset by synset.

After the replay and the refit, the skills, the priors and the exclusions are
fixed: each synset's decisions then depend on its own votes and that model
only, so synsets can be decided and written in any order and at once. This
module hands contiguous runs of synsets to worker processes; each reads its
synsets' votes and rows (one synset at a time, as the single-process pass does),
decides them with :class:`FinalRule`, and writes each synset's changed rows in a
transaction of its own (:func:`yielding_write`). The parent merges what the
workers saw in synset order (:meth:`.synset_pass.Written.merge`), so the
voters' records it writes afterwards are the same floats one process would get.

Only on PostgreSQL: the workers write beside each other, and on SQLite writers
take turns on one file lock, so a second process would only wait.
The replay before it stays one sequence, since what annotators showed in earlier
synsets carries into later ones.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import live_sql as sql
from synset_builder.consensus.dynamic import Verdict, evaluate_item
from synset_builder.consensus.model import SkillState
from synset_builder.consensus.synset_pass import Written, synset_rows, synset_rows_now, synset_votes
from synset_builder.db.bulk import rows_params
from synset_builder.db.session import make_engine, sqlstate

# Synsets per task: small enough for progress per synset and an even split, large
# enough that the two statements a task runs are not a visible cost.
CHUNK = 20


@dataclass
class FinalRule:
    """The dynamic rule's verdict on an item with the final skills; picklable, so that
    worker processes decide exactly as the parent would."""

    cfg: DynamicConfig
    state: SkillState
    gold: Mapping[int, bool]
    team: frozenset[int]
    members: int = field(init=False)

    def __post_init__(self) -> None:
        self.members = len(self.team) - sum(1 for w in self.state.excluded if w in self.team)

    def __call__(
        self, sid: int, cid: int, votes: list[tuple[int, int]], initial: bool
    ) -> Verdict | None:
        if cid in self.gold:
            answer = int(self.gold[cid])
            return Verdict("decided", answer, (float(answer == 0), float(answer == 1)))
        left = None
        if self.team:
            gone = self.state.excluded
            left = self.members - len({w for w, _ in votes if w in self.team and w not in gone})
        return evaluate_item(self.state, sid, votes, config=self.cfg, initial=initial,
                             voters_left=left)  # fmt: skip


Verdicts = Callable[[int, int, list[tuple[int, int]], bool], Verdict | None]


@dataclass(frozen=True)
class FinalPass:
    """Everything the final pass reads besides the database (sent to each worker)."""

    method: str
    cfg: DynamicConfig
    verdict_of: Verdicts
    gold: Mapping[int, bool]
    excluded: Mapping[Hashable, str]
    team: set[int]
    requeues: Mapping[int, list[tuple[int, datetime]]]


# A refit's statement gives up a row lock after this long rather than wait into a
# deadlock (PostgreSQL detects those after a second and may abort the annotator's
# submit instead); it then tries the synset again, a little later each time.
LOCK_TIMEOUT = "100ms"
ATTEMPTS = 20


def yielding_write(writer: Engine, upsert: Executable, params: object) -> None:
    """One synset's rows in a transaction of their own, yielding to the web app's
    submits: on PostgreSQL a lock wait or deadlock costs the refit a retry, never a
    submit (SQLite has no row locks; its busy timeout serialises writers)."""
    for attempt in range(ATTEMPTS):
        try:
            with writer.begin() as conn:
                if writer.dialect.name == "postgresql":
                    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                conn.execute(upsert, params)
            return
        except OperationalError as exc:
            if sqlstate(exc) not in ("55P03", "40P01") or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def write_synsets(
    session: Session,
    sids: Sequence[int],
    final: FinalPass,
    seen: Written,
    *,
    writer: Engine | None,
    postgresql: bool,
) -> Iterator[int]:
    """Decide ``sids`` (ascending) one synset at a time and write the rows that change:
    in ``session``, or each synset in a transaction of its own on ``writer``. Yields
    after each synset (for progress)."""
    upsert = sql.upsert_consensus(postgresql)
    passes = zip(sids, synset_votes(session, sids), synset_rows_now(session, sids), strict=True)
    for sid, votes, now_rows in passes:
        rows = synset_rows(
            votes, {row[0]: row for row in now_rows},
            lambda cid, votes, initial, sid=sid: final.verdict_of(sid, cid, votes, initial),
            method=final.method, cfg=final.cfg, gold=final.gold, excluded=final.excluded,
            team=final.team, requeues=final.requeues, seen=seen,
        )  # fmt: skip
        if rows and writer is not None:
            yielding_write(writer, upsert, rows_params(rows, sql.CONSENSUS_COLUMNS, postgresql))
        elif rows:
            session.execute(upsert, rows_params(rows, sql.CONSENSUS_COLUMNS, postgresql))
        yield sid


def _task(url: str, sids: list[int], final: FinalPass) -> Written:
    """A worker's run of synsets, on a connection of its own; what it saw, as a log."""
    engine = make_engine(url, pool_size=2)
    seen = Written(log=[])
    try:
        with Session(engine) as session:
            for _ in write_synsets(session, sids, final, seen, writer=engine, postgresql=True):
                pass
    finally:
        engine.dispose()
    return seen


def write_in_processes(
    url: str,
    sids: Sequence[int],
    final: FinalPass,
    seen: Written,
    *,
    workers: int,
    tick: Callable[[int], None],
) -> None:
    """The final pass over ``workers`` processes (PostgreSQL); merges into ``seen`` in
    synset order and calls ``tick(synsets done)`` as runs of synsets finish."""
    chunks = [list(sids[i : i + CHUNK]) for i in range(0, len(sids), CHUNK)]
    # forkserver: a clean child, not a fork of a parent that holds connections and
    # numpy's thread pool.
    context = get_context("forkserver")
    context.set_forkserver_preload(["synset_builder.consensus.write_pool"])
    done = 0
    # A few runs ahead of the one merged next, not all of them: a finished run's
    # result (its log) waits here until merged, and with every run submitted at once
    # the results behind a slow run would pile up with the number of synsets.
    ahead = 2 * workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: deque[tuple[int, Future[Written]]] = deque()
        try:
            for chunk in chunks:
                futures.append((len(chunk), pool.submit(_task, url, chunk, final)))
                while len(futures) > ahead or (futures and chunk is chunks[-1]):
                    size, future = futures.popleft()
                    seen.merge(future.result())
                    done += size
                    tick(done)
        except BaseException:  # a failed run or Ctrl-C: start no further synsets
            pool.shutdown(wait=True, cancel_futures=True)
            raise
