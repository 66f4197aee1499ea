"""The funnel per synset: how far each category has come through the pipeline.

Each stage contributes counters here under fixed names (``queries, candidates,
failed, clean, rejected, votes, accepted, rejected_by_vote, undecided,
pending``), so scripts reading ``synset status --json`` can rely on them. All
but ``pending`` are the names design.md fixes; ``pending`` (items still
collecting votes) sits beside ``undecided`` so a curator can tell work still in
the queue from items the vote cap gave up on. A counter is one GROUP BY query
returning ``{synset_id: count}``, so the funnel (and the dashboard built on it)
costs one query per counter however many synsets there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from synset_builder.db.models import (
    Candidate,
    Consensus,
    FetchFailure,
    Image,
    Query,
    Synset,
    Vote,
)
from synset_builder.pool import clean_clause, cleaned_clause, passed_clean_clause

Counter = Callable[[Session], dict[int, int]]


def _grouped(session: Session, stmt: Select) -> dict[int, int]:
    return {sid: n for sid, n in session.execute(stmt)}


def count_queries(session: Session) -> dict[int, int]:
    return _grouped(
        session,
        select(Query.synset_id, func.count()).where(Query.active).group_by(Query.synset_id),
    )


def count_candidates(session: Session) -> dict[int, int]:
    return _grouped(
        session, select(Candidate.synset_id, func.count()).group_by(Candidate.synset_id)
    )


def count_failed(session: Session) -> dict[int, int]:
    """URLs the crawler could not use and has not since fetched on a retry."""
    return _grouped(
        session,
        select(FetchFailure.synset_id, func.count())
        .where(FetchFailure.resolved.is_(False))
        .group_by(FetchFailure.synset_id),
    )


def _cleaned(in_pool: bool) -> Select:
    pool = clean_clause() if in_pool else ~passed_clean_clause()
    return (
        select(Candidate.synset_id, func.count())
        .join(Image, Image.id == Candidate.image_id)
        .where(cleaned_clause(), pool)
        .group_by(Candidate.synset_id)
    )


def count_clean(session: Session) -> dict[int, int]:
    """Candidates the clean stage looked at and left for voting (see synset_builder.pool)."""
    return _grouped(session, _cleaned(True))


def count_rejected(session: Session) -> dict[int, int]:
    """Candidates the clean stage took out: bad quality, near duplicate, reference copy."""
    return _grouped(session, _cleaned(False))


def count_votes(session: Session) -> dict[int, int]:
    return _grouped(
        session,
        select(Candidate.synset_id, func.count(Vote.id))
        .join(Vote, Vote.candidate_id == Candidate.id)
        .group_by(Candidate.synset_id),
    )


def _decisions(decision: str) -> Counter:
    def count(session: Session) -> dict[int, int]:
        return _grouped(
            session,
            select(Candidate.synset_id, func.count())
            .join(Consensus, Consensus.candidate_id == Candidate.id)
            .where(Consensus.decision == decision)
            .group_by(Candidate.synset_id),
        )

    return count


# Ordered as the pipeline runs; later stages add their counters here.
COUNTERS: dict[str, Counter] = {
    "queries": count_queries,
    "candidates": count_candidates,
    "failed": count_failed,
    "clean": count_clean,
    "rejected": count_rejected,
    "votes": count_votes,
    "accepted": _decisions("accepted"),
    "rejected_by_vote": _decisions("rejected"),
    "undecided": _decisions("undecided"),
    # Still being voted on: dynamic consensus has not settled them nor hit the cap.
    "pending": _decisions("pending"),
}


@dataclass(frozen=True)
class SynsetStatus:
    wnid: str
    name: str
    target: bool
    goal: int
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "wnid": self.wnid,
            "name": self.name,
            "target": self.target,
            "goal": self.goal,
            "counts": self.counts,
        }


def funnel(session: Session, *, targets_only: bool = False) -> list[SynsetStatus]:
    """One entry per synset (targets first in wnid order), with every counter."""
    tallies = {name: counter(session) for name, counter in COUNTERS.items()}
    stmt = select(Synset).order_by(Synset.target.desc(), Synset.wnid)
    if targets_only:
        stmt = stmt.where(Synset.target)
    return [
        SynsetStatus(
            wnid=s.wnid,
            name=s.name,
            target=s.target,
            goal=s.goal,
            counts={name: tally.get(s.id, 0) for name, tally in tallies.items()},
        )
        for s in session.scalars(stmt)
    ]
