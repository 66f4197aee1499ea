"""What the crawl will do: the synsets, their quotas, and each one's stream of hits.

A synset's stream is page 1 of every query of every source, then page 2, ...;
its order decides which hits a synset takes and which URL of two equal files
becomes the candidate, so the local and the cluster crawl walk the very same
streams (:mod:`synset_builder.crawl.run`). Nothing here downloads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.request import url2pathname

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.crawl import records
from synset_builder.crawl.fetch import FetchConfig
from synset_builder.crawl.records import PageDone, Tally
from synset_builder.crawl.sources import Hit, SearchPage, Source, SourceError, SynsetRef
from synset_builder.db.models import Query, Synset
from synset_builder.decision import Decision
from synset_builder.errors import InvalidInput, NotFound


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
    # Above 1, a local crawl downloads in that many worker processes
    # (:mod:`synset_builder.crawl.workers`), ``concurrency`` threads among them.
    processes: int = 1


@dataclass(frozen=True)
class Job:
    """One synset to crawl: until it holds ``want`` candidates (or the sources run dry)."""

    synset_id: int
    ref: SynsetRef
    queries: tuple[str, ...]
    want: float


@dataclass(frozen=True)
class Item:
    """A position in a synset's stream: a hit to fetch and/or the end of a result page."""

    hit: Hit | None
    page: PageDone | None = None


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
    accepted = records.decision_counts(session, Decision.accepted)
    rejected = records.decision_counts(session, Decision.rejected)
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
