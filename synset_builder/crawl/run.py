"""The crawl stage's one scheduler: cut every synset's stream into units, count the writes.

The rule that makes a crawl resumable: a synset takes hits only while ``have +
in flight < want``, counting in ``have`` only ``new`` rows already written. Every
hit taken is then needed whatever the hits in flight turn out to be, so every
run tries the same shortest prefix of the stream (:mod:`synset_builder.crawl.plan`)
that fills the quota, and an interrupted crawl, run again, ends exactly where an
uninterrupted one does. Finished result pages are recorded with the rows, so a
rerun does not ask the services again.

Where the downloads and the writes happen is the executor's business, as in
img2dataset's distributor: :class:`~synset_builder.crawl.local.LocalExecutor` (a
thread pool, the driver writes) or, with ``--cluster``,
:class:`~synset_builder.crawl.cluster.DaskExecutor` (workers download and write).
Both write one synset's rows in stream order, so of two URLs with the same bytes
the one found first becomes the candidate, whichever download finished first.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from synset_builder.crawl import records
from synset_builder.crawl.plan import CrawlConfig, Item, Job, failure_stream, hit_stream, open_jobs
from synset_builder.crawl.records import PageDone, Tally
from synset_builder.crawl.sources import Hit, Source
from synset_builder.crawl.store import sweep_temp
from synset_builder.progress import phase

if TYPE_CHECKING:
    from synset_builder.distributed import DaskRunner

# Synsets walked at once: enough to keep every connection busy when some run dry.
ACTIVE_SYNSETS = 8

# Per hit of a written unit: new | duplicate | failed, and the failure's reason.
Statuses = list[tuple[str, str | None]]


@dataclass(frozen=True)
class Unit:
    """Consecutive hits of one synset's stream, sent out together; at most one page ends in it."""

    synset_id: int
    hits: tuple[Hit, ...]
    # Set when the unit ends a result page: the page is recorded with the unit's rows.
    page: PageDone | None = None


@dataclass(eq=False)
class Lane:
    """One synset's stream on the driver, and how much of it is out with the executor."""

    job: Job
    items: Iterator[Item]
    seen: set[str]
    have: int
    pending: int = 0  # hits sent out, not yet written
    writes: int = 0  # units sent out, not yet written
    dry: bool = False

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


class Executor(Protocol):
    """Downloads a unit's hits and writes its rows, a lane's units in the order sent."""

    unit_size: int

    def has_room(self) -> bool:
        """Whether another unit may be sent now."""
        ...

    def submit(self, lane: Lane, unit: Unit) -> None: ...

    def busy(self) -> bool:
        """Whether any unit sent is not yet reported written."""
        ...

    def completed(self) -> list[tuple[Lane, Unit, Statuses]]:
        """Units written since the last call (waits a little for one when busy)."""
        ...


def _tally(tallies: dict[str, Tally], unit: Unit, statuses: Statuses) -> int:
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


def crawl(
    session: Session,
    data_dir: Path,
    sources: Sequence[Source],
    cfg: CrawlConfig,
    runner: DaskRunner | None = None,
) -> dict[str, Tally]:
    """Run the crawl to the end, here or on ``runner``'s cluster; a summary per source."""
    data_dir = Path(data_dir).resolve()  # cluster workers run in folders of their own
    sweep_temp(data_dir)
    if runner is None:
        from synset_builder.crawl.local import LocalExecutor

        with LocalExecutor(session, data_dir, cfg) as local:
            return _schedule(session, sources, cfg, local)
    from synset_builder.crawl.cluster import DaskExecutor

    return _schedule(session, sources, cfg, DaskExecutor(runner, session, data_dir, cfg))


def _fill(executor: Executor, active: list[Lane], tallies: dict[str, Tally]) -> None:
    """Send units while the executor has room, one unit per synset in turn."""
    size = executor.unit_size
    progressed = True
    while progressed and executor.has_room():
        progressed = False
        for lane in active:
            if not executor.has_room() or not lane.room(size):
                continue
            unit = lane.next_unit(size, tallies)
            if unit is not None:
                progressed = True
                lane.pending += len(unit.hits)
                lane.writes += 1
                executor.submit(lane, unit)


def _schedule(
    session: Session, sources: Sequence[Source], cfg: CrawlConfig, executor: Executor
) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {s.name: Tally() for s in sources}
    down: set[str] = set()  # specs of services found unreachable in this run
    counts = records.candidate_counts(session)
    jobs = open_jobs(session, cfg, counts)
    size = executor.unit_size
    # The bar starts at what the quotas ask for and shrinks as each synset finishes
    # short of its quota (sources dry, a folder of 398 files), so it ends at 100%
    # exactly when the crawl ends, never at "398/2000".
    share = {j.synset_id: max(0, j.want - counts.get(j.synset_id, 0)) for j in jobs}
    total = None if cfg.retry_failed else sum(share.values())

    def start(job: Job) -> Lane:
        have = counts.get(job.synset_id, 0)
        if cfg.retry_failed:
            lane = Lane(job, iter(list(failure_stream(session, job, tallies))), set(), have)
        else:
            finished = records.finished_pages(session, job.synset_id)
            seen = records.known_urls(session, job.synset_id)
            lane = Lane(job, hit_stream(job, sources, finished, tallies, down), seen, have)
        session.rollback()  # hold no transaction open while others write
        return lane

    # On a terminal a bar, in a log one line at the end (synset_builder/progress.py).
    with phase(total, "crawl", "img", enabled=cfg.progress) as bar:
        waiting = list(reversed(jobs))
        active: list[Lane] = []
        while True:
            while len(active) < ACTIVE_SYNSETS and waiting:
                active.append(start(waiting.pop()))
            _fill(executor, active, tallies)
            finished = [lane for lane in active if not (lane.writes or lane.room(size))]
            active = [lane for lane in active if lane.writes or lane.room(size)]
            if total is not None and finished:
                # Each lane began with ``have`` = its count then.
                bar.total -= sum(
                    share[f.job.synset_id] - (f.have - counts.get(f.job.synset_id, 0))
                    for f in finished
                )
                bar.refresh()
            if not executor.busy():
                if not active and not waiting:
                    break
                continue
            for lane, unit, statuses in executor.completed():
                new = _tally(tallies, unit, statuses)
                lane.have += new
                lane.pending -= len(unit.hits)
                lane.writes -= 1
                bar.update(new)
            bar.set_postfix(failed=sum(sum(t.failed.values()) for t in tallies.values()))
    return tallies
