"""The crawl's executor on one machine: a thread pool downloads, the driver writes.

Downloads are plain blocking calls (:meth:`~synset_builder.crawl.fetch.Fetcher.fetch`)
on ``--concurrency`` threads, up to twice that many queued so no thread waits for
the scheduler. With ``processes`` above one those threads live in worker processes
(:mod:`synset_builder.crawl.workers`), so downloads use more than one core; the
driver still cuts the units and writes every row. Units are one hit each, so the
synsets' downloads interleave hit by hit. A unit is written once it and every
earlier unit of its synset are downloaded, so rows land in stream order; writes
are batched (``commit_every`` rows, or a second, or whenever nothing is
downloading) because a commit per image would cost more than the image. For the
same reason files are not fsynced one by one: each batch's files are synced at
once (:func:`~synset_builder.crawl.store.sync_store`)
before the commit of the rows that name them.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue
from types import TracebackType

from sqlalchemy.orm import Session

from synset_builder.crawl import records
from synset_builder.crawl.fetch import Download, Failed, Fetched, Fetcher, Outcome, bound_heap
from synset_builder.crawl.plan import CrawlConfig
from synset_builder.crawl.run import Lane, Statuses, Unit
from synset_builder.crawl.store import sync_store
from synset_builder.crawl.workers import DownloadWorkers, WorkerFailed

# A download back from a thread or a worker: its unit, its index there, what it came to.
Arrival = tuple["_Sent", int, Outcome | BaseException]


@dataclass(eq=False)
class _Sent:
    """A unit on its way: its downloads as they come back."""

    lane: Lane
    unit: Unit
    outcomes: list[Outcome | None] = field(default_factory=list)
    left: int = 0


class LocalExecutor:
    """Threads download, this process writes; see the module docstring."""

    unit_size = 1

    def __init__(self, session: Session, data_dir: Path, cfg: CrawlConfig) -> None:
        bound_heap()
        self.session = session
        self.cfg = cfg
        self.data_dir = data_dir
        self.workers: DownloadWorkers | None = None
        self.pool: ThreadPoolExecutor | None = None
        if cfg.processes > 1:
            self.workers = DownloadWorkers(cfg.fetch, data_dir, cfg.processes, cfg.concurrency)
            # token -> the unit and index a worker's download belongs to
            self.tokens: dict[int, tuple[_Sent, int]] = {}
            self.next_token = 0
        else:
            self.fetcher = Fetcher(cfg.fetch, data_dir, durable=False)
            self.pool = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="fetch")
        self.max_downloads = 2 * cfg.concurrency
        self.downloading = 0
        # Threads hand back (unit, index, outcome) here: O(1) per download, unlike wait().
        self.results: SimpleQueue[Arrival] = SimpleQueue()
        self.lanes: dict[Lane, deque[_Sent]] = {}
        self.batch: list[_Sent] = []
        self.last_flush = time.monotonic()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=exc is not None)
        if self.workers is not None:
            self.workers.close()

    def has_room(self) -> bool:
        return self.downloading < self.max_downloads

    def busy(self) -> bool:
        return bool(self.downloading or self.batch or any(self.lanes.values()))

    def submit(self, lane: Lane, unit: Unit) -> None:
        sent = _Sent(lane, unit, [None] * len(unit.hits), len(unit.hits))
        self.lanes.setdefault(lane, deque()).append(sent)
        for i, hit in enumerate(unit.hits):
            self.downloading += 1
            if self.workers is not None:
                self.next_token += 1
                self.tokens[self.next_token] = (sent, i)
                self.workers.send(self.next_token, hit.url, hit.local_path)
            else:
                self.pool.submit(self._work, sent, i)  # type: ignore[union-attr]

    def _work(self, sent: _Sent, i: int) -> None:
        try:
            self.results.put((sent, i, self.fetcher.fetch(sent.unit.hits[i])))
        except BaseException as exc:  # a bug, not a bad URL: re-raised in the main thread
            self.results.put((sent, i, exc))

    def _arrivals(self) -> list[Arrival]:
        """Downloads done since the last call, waiting up to half a second for one."""
        if self.workers is None:
            try:
                got = [self.results.get(timeout=0.5)]
                while not self.results.empty():
                    got.append(self.results.get_nowait())
            except Empty:
                got = []
            return got
        arrivals: list[Arrival] = []
        for token, result in self.workers.receive(timeout=0.5):
            sent, i = self.tokens.pop(token)
            if isinstance(result, Download):
                arrivals.append((sent, i, result.outcome(sent.unit.hits[i])))
            else:
                arrivals.append((sent, i, WorkerFailed(f"bug in a download worker:\n{result}")))
        return arrivals

    def completed(self) -> list[tuple[Lane, Unit, Statuses]]:
        if self.downloading:
            for sent, i, outcome in self._arrivals():
                self.downloading -= 1
                if isinstance(outcome, BaseException):
                    raise outcome
                sent.outcomes[i] = outcome
                sent.left -= 1
        # Move what is downloaded, in stream order, into the write batch.
        for queue in self.lanes.values():
            while queue and not queue[0].left:
                self.batch.append(queue.popleft())
        rows = sum(len(s.unit.hits) + (s.unit.page is not None) for s in self.batch)
        if self.batch and (
            rows >= self.cfg.commit_every
            or not self.downloading
            or time.monotonic() - self.last_flush > 1.0
        ):
            return self._flush()
        return []

    def _flush(self) -> list[tuple[Lane, Unit, Statuses]]:
        batch, self.batch = self.batch, []
        outcomes = [(s.unit.synset_id, o) for s in batch for o in s.outcomes]
        if any(isinstance(o, Fetched) and o.path != o.hit.local_path for _, o in outcomes):
            sync_store(self.data_dir)  # every file a row names is on disk before the commit
        statuses = records.record(
            self.session,
            outcomes,  # type: ignore[arg-type]
            [s.unit.page for s in batch if s.unit.page is not None],
            resolve_failures=self.cfg.retry_failed,
        )
        self.last_flush = time.monotonic()
        done, at = [], 0
        for s in batch:
            n = len(s.unit.hits)
            reasons = [o.reason if isinstance(o, Failed) else None for o in s.outcomes]
            done.append((s.lane, s.unit, list(zip(statuses[at : at + n], reasons, strict=True))))
            at += n
        self.lanes = {lane: q for lane, q in self.lanes.items() if q}
        return done
