"""The crawl's executor on a Dask cluster (``synset crawl --cluster``): workers download and write.

The driver's scheduler (:mod:`synset_builder.crawl.run`) walks every synset's
stream as it does for a local crawl and cuts it into *units*: consecutive hits of
one result page of one (synset, source, query), at most ``--concurrency`` of
them and never more than the synset still lacks. Each unit is two Dask tasks:

* ``fetch_unit`` (any worker): download, validate and store the hits in the shared
  store, ``--per-host`` held cluster-wide; returns the outcomes;
* ``write_unit`` (any worker, after the synset's previous unit was written): write
  the unit's candidates, failure records and finished page to the shared database
  in one transaction; returns new | duplicate | failed per hit.

So the downloads of one synset, even one with a single huge query, run on every
worker at once, while its rows are written in stream order, as one process writes
them: of two URLs with the same bytes the one found first becomes the candidate,
whichever finished first; the scheduler's rule for taking hits is the same as for
a local crawl, so both stop at exactly ``--per-synset``.

A write that finds its URLs already recorded (Dask re-running it after a worker was
lost, or a task of a killed driver still committing) reports what is there instead
of writing again; a killed crawl resumes like a single-process one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.crawl import records
from synset_builder.crawl.fetch import Failed, FetchConfig, Fetcher, Outcome, bound_heap
from synset_builder.crawl.plan import CrawlConfig
from synset_builder.crawl.records import PageDone, url_key
from synset_builder.crawl.run import Lane, Statuses, Unit
from synset_builder.crawl.sources import Hit
from synset_builder.db.models import Candidate, CrawlPage, FetchFailure
from synset_builder.db.session import session_scope
from synset_builder.distributed import ClusterHostSlots, DaskRunner, worker_engine, worker_url


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
) -> Statuses:
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


class DaskExecutor:
    """Each unit is a fetch task and a write task; a synset's writes wait for each other."""

    def __init__(self, runner: DaskRunner, session: Session, data_dir: Path, cfg: CrawlConfig):
        self.client = runner.client
        self.database_url = worker_url(session)
        self.data_dir = data_dir
        self.cfg = cfg
        self.unit_size = cfg.concurrency
        self.window = 2 * runner.threads()
        self.run = uuid.uuid4().hex[:8]
        self.sent = 0
        self.in_flight: dict[Any, tuple[Lane, Unit]] = {}
        # The future of each synset's latest write: the next one waits for it.
        self.last: dict[Lane, Any] = {}

    def has_room(self) -> bool:
        return len(self.in_flight) < self.window

    def busy(self) -> bool:
        return bool(self.in_flight)

    def submit(self, lane: Lane, unit: Unit) -> None:
        self.sent += 1
        tag = f"{lane.job.ref.wnid}-{self.run}-{self.sent}"
        fetched = self.client.submit(
            fetch_unit, self.cfg.fetch, self.data_dir, unit.hits, key=f"fetch-{tag}"
        )
        write = self.client.submit(
            write_unit, self.database_url, unit, fetched, self.last.get(lane),
            self.cfg.retry_failed, key=f"write-{tag}", priority=10,
        )  # fmt: skip
        self.last[lane] = write
        self.in_flight[write] = (lane, unit)

    def completed(self) -> list[tuple[Lane, Unit, Statuses]]:
        from distributed import wait

        done, _ = wait(list(self.in_flight), return_when="FIRST_COMPLETED")
        out = []
        for future in done:
            lane, unit = self.in_flight.pop(future)
            if self.last.get(lane) is future:
                del self.last[lane]
            out.append((lane, unit, future.result()))
        return out
