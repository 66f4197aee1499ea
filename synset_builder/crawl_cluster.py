"""``synset crawl --cluster``: the crawl partitioned by synset over Dask workers.

Each work unit is one target synset: a worker opens its own connection to the
shared database, builds the sources from their specs and runs the ordinary
:func:`synset_builder.crawl.crawl` for that synset alone, writing candidates,
failure records and files into the shared database and store (a path every
worker sees). A synset's stream (its queries and result pages, in order) is the
same as in a single-machine run and images shared by synsets are deduplicated by
the store's unique sha256, so the final state is the same; a killed worker's
synset resumes like any interrupted crawl.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.crawl import CrawlConfig, crawl, plan
from synset_builder.crawl_records import Tally
from synset_builder.db.session import make_engine, session_scope
from synset_builder.distributed import BatchRunner
from synset_builder.sources import make_source


def crawl_unit(unit: tuple[Settings, tuple[str, ...], CrawlConfig, str]) -> dict[str, Tally]:
    """Crawl one synset on a worker; picklable arguments only."""
    settings, specs, cfg, wnid = unit
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            sources = [make_source(spec, settings) for spec in specs]
            one = replace(cfg, wnids=(wnid,), progress=False)
            return crawl(session, settings.ensure_data_dir(), sources, one)
    finally:
        engine.dispose()


def merge(into: dict[str, Tally], part: dict[str, Tally]) -> None:
    for name, tally in part.items():
        total = into.setdefault(name, Tally())
        total.found += tally.found
        total.downloaded += tally.downloaded
        total.duplicate += tally.duplicate
        total.known += tally.known
        total.failed = Counter(total.failed) + Counter(tally.failed)
        total.errors.extend(e for e in tally.errors if e not in total.errors)


def crawl_on_cluster(
    session: Session,
    runner: BatchRunner,
    settings: Settings,
    specs: Sequence[str],
    cfg: CrawlConfig,
) -> dict[str, Tally]:
    """Plan on the driver, crawl every synset as a unit on the cluster, sum the tallies."""
    wnids = [job.ref.wnid for job in plan(session, cfg)]
    session.rollback()  # hold no transaction open while the workers write
    tallies: dict[str, Tally] = {spec.split(":", 1)[0]: Tally() for spec in specs}
    units = [(settings, tuple(specs), cfg, wnid) for wnid in wnids]
    for part in runner.map(crawl_unit, units):
        merge(tallies, part)
    return tallies
