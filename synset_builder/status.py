"""The funnel per synset: how far each category has come through the pipeline.

Each stage contributes counters here under fixed names (``queries, candidates,
failed, clean, rejected, votes, accepted, rejected_by_vote, undecided,
pending``), so scripts reading ``synset status --json`` can rely on them. All
but ``pending`` are the names design.md fixes; ``pending`` (items still
collecting votes) sits beside ``undecided`` so a curator can tell work still in
the queue from items the vote cap gave up on.

Two ways to the same numbers. :data:`COUNTERS` are the definitions: one GROUP BY
each over every candidate, vote or decision, exact and slow at scale. What pages
and commands read (:func:`funnel`) are the counters triggers keep
(synset_builder/tally.py), one row per synset. ``recount`` runs the
definitions and resets the kept counters to them (``synset status --recount``,
synset_builder/recount.py); tests hold the two equal after every kind of write.
Both count the crowd's decisions; :func:`funnel` moves the items a curator judged
to the expert's decision (synset_builder/review/decisions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.db.models import (
    Candidate,
    Consensus,
    FetchFailure,
    Image,
    Query,
    Synset,
    Vote,
)
from synset_builder.decision import Decision
from synset_builder.pool import clean_clause, cleaned_clause, passed_clean_clause
from synset_builder.review import audit, decisions
from synset_builder.review.figures import Figure

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


def count_agreement(session: Session) -> dict[int, tuple[int, float]]:
    """Per synset: items with two votes or more, and the sum over them of the share
    of voters siding with the majority (the dashboard's agreement is the mean)."""
    per_item = (
        select(
            Candidate.synset_id.label("sid"),
            func.count(Vote.id).label("n"),
            func.sum(case((Vote.answer.is_(True), 1), else_=0)).label("yes"),
        )
        .join(Vote, Vote.candidate_id == Candidate.id)
        .group_by(Candidate.id, Candidate.synset_id)
        .having(func.count(Vote.id) >= 2)
        .subquery()
    )
    c = per_item.c
    major = case((c.yes * 2 >= c.n, c.yes), else_=c.n - c.yes)
    stmt = select(c.sid, func.count(), func.sum(major * 1.0 / c.n)).group_by(c.sid)
    return {sid: (int(n), float(total)) for sid, n, total in session.execute(stmt)}


# Ordered as the pipeline runs; later stages add their counters here.
COUNTERS: dict[str, Counter] = {
    "queries": count_queries,
    "candidates": count_candidates,
    "failed": count_failed,
    "clean": count_clean,
    "rejected": count_rejected,
    "votes": count_votes,
    "accepted": _decisions(Decision.accepted),
    "rejected_by_vote": _decisions(Decision.rejected),
    "undecided": _decisions(Decision.undecided),
    # Still being voted on: dynamic consensus has not settled them nor hit the cap.
    "pending": _decisions(Decision.pending),
}


@dataclass(frozen=True)
class SynsetStatus:
    wnid: str
    name: str
    target: bool
    goal: int
    counts: dict[str, int] = field(default_factory=dict)
    # The blind precision audit (synset_builder/review/audit.py); None: never audited.
    audit: Figure | None = None
    # The share of items the crowd cannot tell, as the last ``synset consensus``
    # learned it (consensus/hard_items.py); None: not learned yet (stored as 0, which
    # a learned share never is), null in JSON as in the dashboard's /api/synsets.
    hard_share: float | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "wnid": self.wnid,
            "name": self.name,
            "target": self.target,
            "goal": self.goal,
            "counts": self.counts,
            "audit": self.audit.as_json() if self.audit is not None else None,
            "hard_share": self.hard_share,
        }


def funnel(
    session: Session, *, targets_only: bool = False, exact: bool = False
) -> list[SynsetStatus]:
    """One entry per synset (targets first in wnid order), with every counter.

    The kept counters (tally.read) unless ``exact``: then the definitions, one
    scan each (what synset_builder/recount.py compares against).
    """
    if exact:
        tallies = {name: counter(session) for name, counter in COUNTERS.items()}
    else:
        kept = tally.read(session)
        tallies = {name: {sid: t.counts[name] for sid, t in kept.items()}
                   for name in tally.COUNTS}  # fmt: skip
        tallies["queries"] = count_queries(session)
    # The crowd's decisions, moved where a curator's judgement is in force.
    for sid, delta in decisions.adjustments(session).items():
        for name, n in delta.items():
            tallies[name][sid] = tallies[name].get(sid, 0) + n
    audits = audit.figures(session)
    stmt = select(
        Synset.id, Synset.wnid, Synset.name, Synset.target, Synset.goal, Synset.hard_share
    ).order_by(Synset.target.desc(), Synset.wnid)
    if targets_only:
        stmt = stmt.where(Synset.target)
    return [
        SynsetStatus(
            wnid=wnid,
            name=name,
            target=target,
            goal=goal,
            counts={counter: tallies[counter].get(sid, 0) for counter in COUNTERS},
            audit=audits.get(sid),
            hard_share=float(hard) if hard else None,
        )
        for sid, wnid, name, target, goal, hard in session.execute(stmt)
    ]
