"""What the review pages show: synsets with their counts, and pages of tiles.

Pages are cut by key (``candidate.id > after ORDER BY id LIMIT n``), never by
OFFSET: page 4,000 of a synset of 100,000 candidates costs what page 1 does, and
a judgement made meanwhile does not shift the next page. Votes and voters are
read for the page's items only.

Audit items are served first and blind: their tiles carry no decision, no
P(yes) and no votes, so the curator judges the picture, not the crowd.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from synset_builder.db.models import (
    Annotator,
    AuditSample,
    Candidate,
    Consensus,
    Report,
    Requeue,
    Synset,
    Unsure,
    Vote,
)
from synset_builder.decision import Decision
from synset_builder.review.audit import figures as audit_figures
from synset_builder.review.decisions import decision_in_force, in_force, read_tallies
from synset_builder.review.figures import Figure, Pooled, pooled

# decision=... on the review pages; "suspect": a trainer flagged it (synset requeue),
# "reported": an annotator reported the image and no curator has answered.
DECISIONS = (*Decision, "suspect", "reported")
PAGE = 24
MAX_PAGE = 200


def _reported() -> ColumnElement[bool]:
    return exists().where(Report.image_id == Candidate.image_id, Report.resolution.is_(None))


def _suspect() -> ColumnElement[bool]:
    return exists().where(Requeue.candidate_id == Candidate.id)


@dataclass(frozen=True)
class SynsetRow:
    """One line of /review: the decisions in force and the work waiting for a curator."""

    wnid: str
    name: str
    counts: dict[str, int]
    audit: Figure | None
    audit_open: int


def overview(session: Session) -> tuple[list[SynsetRow], Pooled]:
    """Every target synset with its counts, audit and open audit items; the pooled audit."""
    tallies = read_tallies(session)
    audits = audit_figures(session)
    extra: dict[str, dict[int, int]] = {}
    for name, where in (("reported", _reported()), ("suspect", _suspect())):
        stmt = select(Candidate.synset_id, func.count()).where(where)
        extra[name] = dict(session.execute(stmt.group_by(Candidate.synset_id)).all())
    open_audit = dict(
        session.execute(
            select(AuditSample.synset_id, func.count())
            .where(AuditSample.judged_label.is_(None))
            .group_by(AuditSample.synset_id)
        ).all()
    )
    rows = []
    stmt = select(Synset.id, Synset.wnid, Synset.name).where(Synset.target).order_by(Synset.wnid)
    for sid, wnid, name in session.execute(stmt):
        kept = tallies.get(sid)
        c = kept.counts if kept else {}
        counts = {
            "accepted": c.get("accepted", 0),
            "rejected": c.get("rejected_by_vote", 0),
            "undecided": c.get("undecided", 0),
            "pending": c.get("pending", 0),
            "reported": extra["reported"].get(sid, 0),
            "suspect": extra["suspect"].get(sid, 0),
        }
        rows.append(SynsetRow(wnid, name, counts, audits.get(sid), open_audit.get(sid, 0)))
    accepted = {sid: t.counts["accepted"] for sid, t in tallies.items()}
    return rows, pooled(audits, accepted)


@dataclass
class Tile:
    """One item on a review page; ``audit`` tiles are blind (the crowd's side is None)."""

    candidate_id: int
    image_id: int
    audit: bool
    decision: str | None = None
    crowd: str | None = None
    expert: bool | None = None
    expert_by: str | None = None
    reason: str | None = None
    p_yes: float | None = None
    yes: list[str] = field(default_factory=list)
    no: list[str] = field(default_factory=list)
    unsure: list[str] = field(default_factory=list)
    source: str = ""
    license: str | None = None
    creator: str | None = None
    url: str | None = None

    @property
    def votes(self) -> dict[str, int] | None:
        if self.audit:
            return None
        return {"yes": len(self.yes), "no": len(self.no), "unsure": len(self.unsure)}


def synset_ref(session: Session, wnid: str) -> Synset | None:
    return session.scalar(select(Synset).where(Synset.wnid == wnid))


def audit_page(session: Session, synset_id: int, n: int, after: int = 0) -> list[Tile]:
    """The synset's unjudged audit items, blind, by candidate id after ``after``."""
    stmt = (
        select(
            Candidate.id,
            Candidate.image_id,
            Candidate.source,
            Candidate.license,
            Candidate.creator,
            Candidate.url,
        )  # fmt: skip
        .join(AuditSample, AuditSample.candidate_id == Candidate.id)
        .where(
            AuditSample.synset_id == synset_id,
            AuditSample.judged_label.is_(None),
            Candidate.id > after,
        )
        .order_by(Candidate.id)
        .limit(n)
    )
    return [
        Tile(cid, image_id, True, source=source, license=lic, creator=creator, url=url)
        for cid, image_id, source, lic, creator, url in session.execute(stmt)
    ]


def open_audit_synset(session: Session) -> str | None:
    """The first synset (by wnid) with unjudged audit items, for /api/review/next."""
    return session.scalar(
        select(Synset.wnid)
        .join(AuditSample, AuditSample.synset_id == Synset.id)
        .where(AuditSample.judged_label.is_(None))
        .order_by(Synset.wnid)
        .limit(1)
    )


def _page_stmt(synset_id: int, decision: str, n: int, after: int, unjudged: bool) -> Select:
    """:func:`page`'s statement: the synset's candidates walked in id order from ``after``
    (the primary key), each matched to its decision in force, until ``n`` match."""
    expert = in_force()
    in_force_now = decision_in_force(expert)
    where = {
        "suspect": _suspect(),
        "reported": _reported(),
    }.get(decision, in_force_now == decision)
    stmt = (
        select(
            Candidate.id,
            Candidate.image_id,
            Candidate.source,
            Candidate.license,
            Candidate.creator,
            Candidate.url,
            in_force_now,
            Consensus.decision,
            Consensus.reason,
            Consensus.p_yes,
            expert.c.label,
            Annotator.username,
        )  # fmt: skip
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .outerjoin(expert, expert.c.candidate_id == Candidate.id)
        .outerjoin(Annotator, Annotator.id == expert.c.annotator_id)
        .where(Candidate.synset_id == synset_id, Candidate.id > after, where)
        .order_by(Candidate.id)
        .limit(n)
    )
    if unjudged:
        stmt = stmt.where(or_(expert.c.candidate_id.is_(None), expert.c.label.is_(None)))
    return stmt


def page(
    session: Session,
    synset_id: int,
    decision: str,
    *,
    n: int = PAGE,
    after: int = 0,
    unjudged: bool = False,
) -> list[Tile]:
    """Up to ``n`` items of ``decision`` (in force) after candidate id ``after``, with
    votes, voters, P(yes), the expert's judgement, source and licence.

    ``unjudged``: only items no curator has judged (the work queue of /api/review/next).
    """
    stmt = _page_stmt(synset_id, decision, n, after, unjudged)
    tiles = [
        Tile(cid, image_id, False, decision=now, crowd=crowd, reason=reason, p_yes=p,
             expert=label, expert_by=who if label is not None else None, source=source,
             license=lic, creator=creator, url=url)  # fmt: skip
        for cid, image_id, source, lic, creator, url, now, crowd, reason, p, label, who
        in session.execute(stmt)
    ]  # fmt: skip
    _add_votes(session, tiles)
    return tiles


def _add_votes(session: Session, tiles: Sequence[Tile]) -> None:
    """Who said yes, no and unsure on these items (one query each, page-sized)."""
    by_id = {t.candidate_id: t for t in tiles}
    if not by_id:
        return
    said: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    votes = (
        select(Vote.candidate_id, Vote.answer, Annotator.username)
        .join(Annotator, Annotator.id == Vote.annotator_id)
        .where(Vote.candidate_id.in_(list(by_id)))
        .order_by(Vote.id)
    )
    for cid, answer, who in session.execute(votes):
        said[cid]["yes" if answer else "no"].append(who)
    unsure = (
        select(Unsure.candidate_id, Annotator.username)
        .join(Annotator, Annotator.id == Unsure.annotator_id)
        .where(Unsure.candidate_id.in_(list(by_id)))
    )
    for cid, who in session.execute(unsure):
        said[cid]["unsure"].append(who)
    for cid, tile in by_id.items():
        tile.yes, tile.no = said[cid]["yes"], said[cid]["no"]
        tile.unsure = said[cid]["unsure"]


def first_with_work(session: Session, decision: str) -> str | None:
    """The first target synset (by wnid) with an unjudged item of ``decision``."""
    expert = in_force()
    where = {"suspect": _suspect(), "reported": _reported()}.get(
        decision, decision_in_force(expert) == decision
    )
    return session.scalar(
        select(Synset.wnid)
        .join(Candidate, Candidate.synset_id == Synset.id)
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .outerjoin(expert, expert.c.candidate_id == Candidate.id)
        .where(Synset.target, where, expert.c.label.is_(None))
        .order_by(Synset.wnid)
        .limit(1)
    )
