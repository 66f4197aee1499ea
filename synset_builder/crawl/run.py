"""The crawl stage: search every target synset's queries and download the hits.

Shape: per synset, a lazy stream of hits (page 1 of every query, then page 2,
...), downloaded by a thread pool (:class:`~synset_builder.crawl.fetch.Fetcher`, one
plain call per hit) and written to the database in stream order
(:mod:`synset_builder.crawl.records`). A synset takes hits until it holds
``per_synset`` candidates, counting downloads in flight, so the set of hits tried
is always the shortest prefix of the stream that fills the quota: an interrupted
crawl, run again, ends exactly where an uninterrupted one does. Finished pages are
remembered, so a re-run does not ask the services again. ``--cluster`` walks the
same streams by the same rule and sends the downloads and writes to Dask workers
(:mod:`synset_builder.crawl.cluster`).
"""

from __future__ import annotations

import ctypes
import math
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, SimpleQueue
from urllib.parse import urlsplit
from urllib.request import url2pathname

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from synset_builder.crawl import records
from synset_builder.crawl.fetch import FetchConfig, Fetcher, Outcome
from synset_builder.crawl.records import PageDone, Tally
from synset_builder.crawl.sources import Hit, SearchPage, Source, SourceError, SynsetRef
from synset_builder.crawl.store import sweep_temp
from synset_builder.db.models import Query, Synset
from synset_builder.errors import InvalidInput, NotFound

ACTIVE_SYNSETS = 8
M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


@dataclass(frozen=True)
class CrawlConfig:
    fetch: FetchConfig
    per_synset: int = 1000
    concurrency: int = 32
    wnids: tuple[str, ...] = ()
    retry_failed: bool = False
    refill: bool = False
    commit_every: int = 256
    progress: bool = True


@dataclass(frozen=True)
class Job:
    """One synset to crawl: until it holds ``want`` candidates (or the sources run dry)."""

    synset_id: int
    ref: SynsetRef
    queries: tuple[str, ...]
    want: float


@dataclass
class Item:
    """A position in a synset's stream: a hit to fetch and/or the end of a result page."""

    hit: Hit | None
    page: PageDone | None = None
    outcome: Outcome | None = None
    done: bool = False


def search_page(source: Source, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
    """The work unit of searching: one page of one query of one source (distributable)."""
    return source.search(synset, query, page)


def hit_stream(
    job: Job,
    sources: Sequence[Source],
    finished: dict,
    tallies: dict[str, Tally],
    down: set[str],
) -> Iterator[Item]:
    """Hits of a synset, spread over its queries: page 1 of each, then page 2, ...

    Shared by the local and the cluster crawl: the order of this stream decides
    which hits a synset takes and which URL of two equal files becomes the candidate.
    """
    pairs = [(src, q) for src in sources for q in (job.queries if src.uses_queries else (None,))]
    page = 1
    while pairs:
        for src, q in list(pairs):
            key = (src.spec, q or "", page)
            if src.spec in down:
                pairs.remove((src, q))
                continue
            if key in finished:
                if finished[key]:
                    pairs.remove((src, q))
                continue
            try:
                result = search_page(src, job.ref, q, page)
            except SourceError as exc:
                tallies.setdefault(src.name, Tally()).errors.append(str(exc))
                pairs.remove((src, q))
                if exc.unreachable:
                    down.add(src.spec)
                continue
            if result.last:
                pairs.remove((src, q))
            # Search services' pages are remembered; local lists are re-read (they may grow).
            done = (
                PageDone(job.synset_id, src.spec, q or "", page, len(result.hits), result.last)
                if src.uses_queries
                else None
            )
            tallies.setdefault(src.name, Tally()).found += len(result.hits)
            for i, hit in enumerate(result.hits):
                yield Item(hit, done if i == len(result.hits) - 1 else None)
            if not result.hits and done is not None:
                yield Item(None, done)
        page += 1


def failure_stream(session: Session, job: Job, tallies: dict[str, Tally]) -> Iterator[Item]:
    """The URLs that failed before (``--retry-failed``), oldest first."""
    for row in records.open_failures(session, job.synset_id):
        local = url2pathname(urlsplit(row.url).path) if row.source == "dir" else None
        tallies.setdefault(row.source, Tally()).found += 1
        yield Item(
            Hit(
                row.url,
                row.source,
                row.query,
                row.rank or 0,
                row.license,
                row.creator,
                row.landing_url,
                row.title,
                local,
            )
        )


@dataclass
class _Stream:
    job: Job
    items: Iterator[Item]
    seen: set[str]
    have: int
    queue: deque[Item] = field(default_factory=deque)
    # Finished items waiting in the write batch: not yet counted in ``have``.
    held: int = 0
    dry: bool = False

    def wants(self) -> bool:
        return not self.dry and self.have + self.held + len(self.queue) < self.job.want


def plan(session: Session, cfg: CrawlConfig) -> list[Job]:
    """The synsets to crawl now and how many candidates each should end up with."""
    stmt = select(Synset).where(Synset.target).order_by(Synset.wnid)
    if cfg.wnids:
        found = {
            s.wnid: s for s in session.scalars(select(Synset).where(Synset.wnid.in_(cfg.wnids)))
        }
        for wnid in cfg.wnids:
            if wnid not in found:
                raise NotFound(f"Unknown synset {wnid}; add it with 'synset hierarchy add'.")
            if not found[wnid].target:
                raise InvalidInput(f"Synset {wnid} is not a collection target; add it as one.")
        stmt = stmt.where(Synset.wnid.in_(cfg.wnids))
    synsets = list(session.scalars(stmt))
    if not synsets:
        raise InvalidInput("There are no target synsets to crawl; add some first.")
    queries: dict[int, list[str]] = {}
    for q in session.scalars(select(Query).where(Query.active).order_by(Query.id)):
        queries.setdefault(q.synset_id, []).append(q.text)
    have = records.candidate_counts(session)
    accepted = records.decision_counts(session, "accepted")
    rejected = records.decision_counts(session, "rejected")
    jobs = []
    for s in synsets:
        want: float = cfg.per_synset
        if cfg.retry_failed:
            want = math.inf
        elif cfg.refill:
            want = refill_target(
                have.get(s.id, 0), accepted.get(s.id, 0), rejected.get(s.id, 0), s.goal
            )
            want = min(want, have.get(s.id, 0) + cfg.per_synset)
        ref = SynsetRef(s.wnid, s.name, tuple(s.lemmas or ()))
        jobs.append(Job(s.id, ref, tuple(queries.get(s.id) or [s.name]), want))
    return jobs


def open_jobs(session: Session, cfg: CrawlConfig, counts: dict[int, int]) -> list[Job]:
    """The planned synsets that still need candidates (all of them with --retry-failed)."""
    return [
        j for j in plan(session, cfg) if cfg.retry_failed or j.want > counts.get(j.synset_id, 0)
    ]


def refill_target(have: int, accepted: int, rejected: int, goal: int) -> int:
    """Candidates a synset needs to reach ``goal`` accepted images at its acceptance rate.

    Synsets nobody has voted on yet keep what they have: there is no rate to go by.
    """
    decided = accepted + rejected
    if decided == 0:
        return have
    rate = accepted / decided
    projected = accepted + rate * (have - decided)
    if projected >= goal:
        return have
    return have + math.ceil((goal - projected) / max(rate, 1.0 / (decided + 1)))


def bound_heap() -> None:
    """Keep download buffers from fragmenting the heap of a many-threaded process.

    glibc gives threads their own arenas and, after the first large free, raises
    its mmap threshold, so ~100 kB image buffers land in arenas and RSS creeps up
    with every URL (measured: 220 -> 324 MB from 1,000 to 6,000 URLs). A fixed 64 kB
    threshold hands those buffers back to the kernel on free; RSS stays flat.
    No library does this; it is a no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)
    except (OSError, AttributeError):
        return


def crawl(
    session: Session, data_dir: Path, sources: Sequence[Source], cfg: CrawlConfig
) -> dict[str, Tally]:
    """Run the crawl to the end; return a summary per source."""
    bound_heap()
    sweep_temp(data_dir)
    tallies: dict[str, Tally] = {s.name: Tally() for s in sources}
    down: set[str] = set()  # specs of services found unreachable in this run
    counts = records.candidate_counts(session)
    jobs = open_jobs(session, cfg, counts)
    fetcher = Fetcher(cfg.fetch, data_dir)

    def start(job: Job) -> _Stream:
        have = counts.get(job.synset_id, 0)
        if cfg.retry_failed:
            return _Stream(job, failure_stream(session, job, tallies), set(), have)
        finished = records.finished_pages(session, job.synset_id)
        seen = records.known_urls(session, job.synset_id)
        return _Stream(job, hit_stream(job, sources, finished, tallies, down), seen, have)

    waiting = list(reversed(jobs))
    active: list[_Stream] = []
    in_flight = 0
    # Workers hand back (item, outcome) here: O(1) per download, unlike wait() on futures.
    results: SimpleQueue[tuple[Item, Outcome | BaseException]] = SimpleQueue()
    batch: list[tuple[_Stream, Item]] = []
    max_pending = cfg.concurrency * 2
    # The bar starts at what the quotas ask for and shrinks as each synset finishes
    # short of its quota (sources dry, a folder of 398 files), so it ends at 100%
    # exactly when the crawl ends, never at "398/2000".
    share = {j.synset_id: max(0, j.want - counts.get(j.synset_id, 0)) for j in jobs}
    total = None if cfg.retry_failed else sum(share.values())
    bar = tqdm(total=total, unit="img", desc="crawl", file=sys.stderr, disable=not cfg.progress)
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        entries = [(s, it) for s, it in batch if it.outcome is not None]
        statuses = records.record(
            session,
            [(s.job.synset_id, it.outcome) for s, it in entries],  # type: ignore[misc]
            [it.page for _, it in batch if it.page is not None],
            resolve_failures=cfg.retry_failed,
        )
        for stream, _ in batch:
            stream.held -= 1
        for (stream, item), status in zip(entries, statuses, strict=True):
            tally = tallies.setdefault(item.hit.source, Tally())  # type: ignore[union-attr]
            if status == "new":
                stream.have += 1
                tally.downloaded += 1
                bar.update(1)
            elif status == "duplicate":
                tally.duplicate += 1
            else:
                tally.failed[item.outcome.reason] += 1  # type: ignore[union-attr]
        bar.set_postfix(failed=sum(sum(t.failed.values()) for t in tallies.values()))
        batch.clear()
        last_flush = time.monotonic()

    def work(item: Item) -> None:
        try:
            results.put((item, fetcher.fetch(item.hit)))  # type: ignore[arg-type]
        except BaseException as exc:  # a bug, not a bad URL: re-raised in the main thread
            results.put((item, exc))

    with ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="fetch") as pool:
        while True:
            while len(active) < ACTIVE_SYNSETS and waiting:
                active.append(start(waiting.pop()))
            # Fill the pool, one hit per synset in turn.
            progressed = True
            while progressed and in_flight < max_pending:
                progressed = False
                for stream in active:
                    if in_flight >= max_pending or not stream.wants():
                        continue
                    item = next(stream.items, None)
                    if item is None:
                        stream.dry = True
                        continue
                    progressed = True
                    stream.queue.append(item)
                    hit = item.hit
                    if hit is None:
                        item.done = True
                    elif hit.url in stream.seen:
                        item.done = True
                        tallies.setdefault(hit.source, Tally()).known += 1
                    else:
                        stream.seen.add(hit.url)
                        in_flight += 1
                        pool.submit(work, item)
            if in_flight:
                try:
                    got = [results.get(timeout=0.5)]
                    while not results.empty():
                        got.append(results.get_nowait())
                except Empty:
                    got = []
                for item, outcome in got:
                    in_flight -= 1
                    if isinstance(outcome, BaseException):
                        raise outcome
                    item.outcome, item.done = outcome, True
            # Move what is finished, in stream order, into the write batch.
            for stream in active:
                while stream.queue and stream.queue[0].done:
                    batch.append((stream, stream.queue.popleft()))
                    stream.held += 1
            if batch and (
                len(batch) >= cfg.commit_every
                or not in_flight
                or time.monotonic() - last_flush > 1.0
            ):
                flush()
            finished = [s for s in active if not (s.queue or s.held or s.wants())]
            active = [s for s in active if s.queue or s.held or s.wants()]
            if total is not None and finished:
                # Each stream began with ``have`` = its count then.
                bar.total -= sum(
                    share[f.job.synset_id] - (f.have - counts.get(f.job.synset_id, 0))
                    for f in finished
                )
                bar.refresh()
            if not active and not waiting and not in_flight:
                break
    if batch:
        flush()
    bar.close()
    return tallies
