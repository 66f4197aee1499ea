"""``synset crawl --cluster``: downloads partitioned by synset, query and result page.

The driver walks every synset's stream exactly as :func:`synset_builder.crawl.run.crawl`
does (page 1 of every query of every source, then page 2, ...; URLs known from
earlier runs skipped) and cuts it into *units*: consecutive hits of one result page
of one (synset, source, query), at most ``--concurrency`` of them and never more
than the synset still lacks. Each unit is two Dask tasks:

* ``fetch_unit`` (any worker): download, validate and store the hits in the shared
  store, ``--per-host`` held cluster-wide; returns the outcomes;
* ``write_unit`` (any worker, after the synset's previous unit was written): write
  the unit's candidates, failure records and finished page to the shared database
  in one transaction; returns new | duplicate | failed per hit.

So the downloads of one synset, even one with a single huge query, run on every
worker at once, while its rows are written in stream order, as one process writes
them: of two URLs with the same bytes the one found first becomes the candidate,
whichever finished first. The driver takes hits by the single-process rule: only
while ``have + in flight < want``, counting only written ``new`` rows in ``have``.
Every hit taken is needed whatever the hits in flight turn out to be, so both runs
try the same shortest prefix of the stream and stop at exactly ``--per-synset``.

A write that finds its URLs already recorded (Dask re-running it after a worker was
lost, or a task of a killed driver still committing) reports what is there instead
of writing again; a killed crawl resumes like a single-process one.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from synset_builder.crawl import records
from synset_builder.crawl.fetch import Failed, FetchConfig, Fetcher, Outcome
from synset_builder.crawl.records import PageDone, Tally, url_key
from synset_builder.crawl.run import (
    ACTIVE_SYNSETS,
    CrawlConfig,
    Item,
    Job,
    bound_heap,
    failure_stream,
    hit_stream,
    open_jobs,
)
from synset_builder.crawl.sources import Hit, Source
from synset_builder.crawl.store import sweep_temp
from synset_builder.db.models import Candidate, CrawlPage, FetchFailure
from synset_builder.db.session import session_scope
from synset_builder.distributed import ClusterHostSlots, DaskRunner, worker_engine, worker_url


@dataclass(frozen=True)
class Unit:
    """A slice of one result page of one synset: what one fetch task downloads."""

    synset_id: int
    hits: tuple[Hit, ...]
    # Set when the slice ends the page: the page is recorded with the unit's rows.
    page: PageDone | None = None


@lru_cache(maxsize=4)
def _fetcher(cfg: FetchConfig, data_dir: Path) -> Fetcher:
    """One fetcher per worker process: its connection pools outlive a task."""
    from distributed import get_worker

    bound_heap()
    return Fetcher(cfg, data_dir, ClusterHostSlots(cfg.per_host, get_worker()))


def fetch_unit(cfg: FetchConfig, data_dir: Path, hits: tuple[Hit, ...]) -> list[Outcome]:
    """Download and store a unit's hits on a worker, all at once; failures are data."""
    if not hits:
        return []
    fetcher = _fetcher(cfg, data_dir)
    with ThreadPoolExecutor(len(hits), thread_name_prefix="fetch") as pool:
        return list(pool.map(fetcher.fetch, hits))


def _already(session: Session, unit: Unit, outcomes: Sequence[Outcome]) -> dict[str, str]:
    """URL -> status for the unit's hits some earlier attempt of this unit wrote."""
    urls = [o.hit.url for o in outcomes]
    got = session.scalars(
        select(Candidate.url).where(Candidate.synset_id == unit.synset_id, Candidate.url.in_(urls))
    )
    failed = session.scalars(
        select(FetchFailure.url).where(
            FetchFailure.synset_id == unit.synset_id,
            FetchFailure.url_sha256.in_([url_key(u) for u in urls]),
        )
    )
    return {**{u: "failed" for u in failed}, **{u: "new" for u in got if u}}


def _page_written(session: Session, page: PageDone) -> bool:
    return (
        session.scalar(
            select(CrawlPage.id).where(
                CrawlPage.synset_id == page.synset_id,
                CrawlPage.source == page.source,
                CrawlPage.query == page.query,
                CrawlPage.page == page.page,
            )
        )
        is not None
    )


def write_unit(
    database_url: str, unit: Unit, outcomes: list[Outcome], after: object, retry: bool
) -> list[tuple[str, str | None]]:
    """Write one unit's rows on a worker; ``after`` (the synset's previous write) orders it.

    Returns (new | duplicate | failed, failure reason) per hit. The driver never sends
    a URL it knew when it started, so a URL found recorded here was recorded by an
    earlier attempt of this very unit: it is reported, not written twice. With
    ``--retry-failed`` the URLs are recorded failures by design, so that check is off.
    """
    with session_scope(worker_engine(database_url)) as session:
        done = {} if retry else _already(session, unit, outcomes)
        todo = [o for o in outcomes if o.hit.url not in done]
        page = unit.page
        if page is not None and not retry and _page_written(session, page):
            page = None
        written = records.record(
            session,
            [(unit.synset_id, o) for o in todo],
            [page] if page is not None else [],
            resolve_failures=retry,
        )
    by_url = dict(zip((o.hit.url for o in todo), written, strict=True))
    return [
        (done.get(o.hit.url) or by_url[o.hit.url], o.reason if isinstance(o, Failed) else None)
        for o in outcomes
    ]


@dataclass
class _Lane:
    """One synset's stream on the driver, and how much of it is out on the cluster."""

    job: Job
    items: Iterator[Item]
    seen: set[str]
    have: int
    pending: int = 0  # hits sent out, not yet written
    writes: int = 0  # units sent out, not yet written
    dry: bool = False
    last: Any = None  # the future of the synset's latest write: the next one waits for it

    def room(self, size: int) -> int:
        """Hits to take now: each is needed even if every hit in flight turns out new."""
        if self.dry:
            return 0
        if math.isinf(self.job.want):
            return size
        return max(0, min(size, int(self.job.want) - self.have - self.pending))

    def next_unit(self, size: int, tallies: dict[str, Tally]) -> Unit | None:
        """The next slice of the stream, cut at the end of a page; None once dry."""
        hits: list[Hit] = []
        page: PageDone | None = None
        room = self.room(size)
        while len(hits) < room:
            item = next(self.items, None)
            if item is None:
                self.dry = True
                break
            hit = item.hit
            if hit is not None and hit.url in self.seen:
                tallies.setdefault(hit.source, Tally()).known += 1
            elif hit is not None:
                self.seen.add(hit.url)
                hits.append(hit)
            if item.page is not None:
                page = item.page
                break
        if not hits and page is None:
            return None
        return Unit(self.job.synset_id, tuple(hits), page)


def _tally(tallies: dict[str, Tally], unit: Unit, statuses: list[tuple[str, str | None]]) -> int:
    """Add a written unit to the summary; the number of new candidates."""
    new = 0
    for hit, (status, reason) in zip(unit.hits, statuses, strict=True):
        tally = tallies.setdefault(hit.source, Tally())
        if status == "new":
            new += 1
            tally.downloaded += 1
        elif status == "duplicate":
            tally.duplicate += 1
        else:
            tally.failed[reason or "failed"] += 1
    return new


def crawl_on_cluster(
    session: Session,
    runner: DaskRunner,
    data_dir: Path,
    sources: Sequence[Source],
    cfg: CrawlConfig,
) -> dict[str, Tally]:
    """Search on the driver, download and write on the workers; a summary per source."""
    from distributed import wait

    client = runner.client
    database_url = worker_url(session)
    data_dir = Path(data_dir).resolve()  # workers run in folders of their own
    sweep_temp(data_dir)
    tallies: dict[str, Tally] = {s.name: Tally() for s in sources}
    down: set[str] = set()  # specs of services found unreachable in this run
    counts = records.candidate_counts(session)
    jobs = open_jobs(session, cfg, counts)
    # As in the local crawl: the total shrinks as synsets finish short of their quota.
    share = {j.synset_id: max(0, j.want - counts.get(j.synset_id, 0)) for j in jobs}
    total = None if cfg.retry_failed else sum(share.values())
    bar = tqdm(total=total, unit="img", desc="crawl", file=sys.stderr, disable=not cfg.progress)
    size, window = cfg.concurrency, 2 * runner.threads()
    run = uuid.uuid4().hex[:8]

    def start(job: Job) -> _Lane:
        have = counts.get(job.synset_id, 0)
        if cfg.retry_failed:
            lane = _Lane(job, iter(list(failure_stream(session, job, tallies))), set(), have)
        else:
            finished = records.finished_pages(session, job.synset_id)
            seen = records.known_urls(session, job.synset_id)
            lane = _Lane(job, hit_stream(job, sources, finished, tallies, down), seen, have)
        session.rollback()  # hold no transaction open while the workers write
        return lane

    def submit(lane: _Lane, unit: Unit, n: int) -> Any:
        tag = f"{lane.job.ref.wnid}-{run}-{n}"
        fetched = client.submit(fetch_unit, cfg.fetch, data_dir, unit.hits, key=f"fetch-{tag}")
        lane.last = client.submit(
            write_unit, database_url, unit, fetched, lane.last, cfg.retry_failed,
            key=f"write-{tag}", priority=10,
        )  # fmt: skip
        lane.pending += len(unit.hits)
        lane.writes += 1
        return lane.last

    waiting = list(reversed(jobs))
    active: list[_Lane] = []
    in_flight: dict[Any, tuple[_Lane, Unit]] = {}
    sent = 0
    while True:
        while len(active) < ACTIVE_SYNSETS and waiting:
            active.append(start(waiting.pop()))
        # Fill the window, one unit per synset in turn.
        progressed = True
        while progressed and len(in_flight) < window:
            progressed = False
            for lane in active:
                if len(in_flight) >= window or not lane.room(size):
                    continue
                unit = lane.next_unit(size, tallies)
                if unit is not None:
                    progressed, sent = True, sent + 1
                    in_flight[submit(lane, unit, sent)] = (lane, unit)
        finished = [lane for lane in active if not (lane.writes or lane.room(size))]
        active = [lane for lane in active if lane.writes or lane.room(size)]
        if total is not None and finished:
            start_of = counts.get  # each lane began with ``have`` = its count then
            bar.total -= sum(
                share[x.job.synset_id] - (x.have - start_of(x.job.synset_id, 0)) for x in finished
            )
            bar.refresh()
        if not in_flight:
            if not active and not waiting:
                break
            continue
        done, _ = wait(list(in_flight), return_when="FIRST_COMPLETED")
        for future in done:
            lane, unit = in_flight.pop(future)
            new = _tally(tallies, unit, future.result())
            lane.have += new
            lane.pending -= len(unit.hits)
            lane.writes -= 1
            bar.update(new)
        bar.set_postfix(failed=sum(sum(t.failed.values()) for t in tallies.values()))
    bar.close()
    return tallies
