"""Numbers for people: an annotator's own progress and the curator's dashboard.

The curator's figures come from the counters triggers keep per synset and per
annotator (synset_builder/tally.py), so the dashboard and ``/api/synsets`` read
one row per synset or annotator, never one per candidate or vote, and answer as
fast at ILSVRC's million candidates as at a thousand. The JSON API returns the
same numbers as the pages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Candidate,
    Gold,
    Image,
    Report,
    Synset,
    Vote,
    utcnow,
)
from synset_builder.db.session import on_postgresql
from synset_builder.review import audit, decisions
from synset_builder.status import count_queries

Row = TypeVar("Row")


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _gold_hits():  # noqa: ANN202 - a SQL expression
    return func.sum(case((Vote.answer == Gold.answer, 1), else_=0))


def my_stats(session: Session, annotator: Annotator) -> dict[str, object]:
    """What the progress bar on the task page shows."""
    now = utcnow()
    today = session.scalar(
        select(func.count(Vote.id)).where(
            Vote.annotator_id == annotator.id, Vote.created_at >= _start_of_day(now)
        )
    )
    total = session.scalar(select(func.count(Vote.id)).where(Vote.annotator_id == annotator.id))
    gold_n, gold_hits = session.execute(
        select(func.count(Vote.id), _gold_hits())
        .join(Gold, Gold.candidate_id == Vote.candidate_id)
        .where(Vote.annotator_id == annotator.id)
    ).one()
    return {
        "username": annotator.username,
        "role": annotator.role,
        "votes_today": today or 0,
        "votes_total": total or 0,
        "gold_answered": gold_n or 0,
        "gold_accuracy": (gold_hits or 0) / gold_n if gold_n else None,
        "pages_done": annotator.pages_done,
        "completion_code": annotator.completion_code,
    }


def planner_default(session: Session) -> None:
    """Plan the rest of this transaction's statements for their values (PostgreSQL).

    The web engine keeps one generic plan per statement (app._planned_once), which
    suits the request path's prebuilt statements and misleads a curator's ad hoc
    query. Lasts until the transaction ends: the connection goes back to the pool
    with generic plans.
    """
    if on_postgresql(session):
        session.execute(select(func.set_config("plan_cache_mode", "auto", True)))


def votes_since(session: Session, since: datetime) -> dict[int, int]:
    """Votes per synset since ``since`` (index ix_vote_created_at: recent votes only)."""
    stmt = (
        select(Candidate.synset_id, func.count())
        .select_from(Vote)
        .join(Candidate, Candidate.id == Vote.candidate_id)
        .where(Vote.created_at >= since)
        .group_by(Candidate.synset_id)
    )
    return dict(session.execute(stmt).all())


def _rows(session: Session, wnid: str | None = None) -> list[dict]:
    """Every target synset (or the synset ``wnid``), without glosses (read per page)."""
    planner_default(session)
    kept = decisions.read_tallies(session)  # a curator's judgement over the crowd's
    audits = audit.figures(session)
    queries = count_queries(session)
    last_hour = votes_since(session, utcnow() - timedelta(hours=1))
    stmt = select(Synset.id, Synset.wnid, Synset.name, Synset.goal, Synset.hard_share)
    stmt = stmt.order_by(Synset.wnid)
    stmt = stmt.where(Synset.wnid == wnid) if wnid else stmt.where(Synset.target)
    rows = []
    for sid, code, name, goal, hard in session.execute(stmt):
        t = kept.get(sid, tally.EMPTY)
        rows.append(
            {
                "id": sid,
                "wnid": code,
                "name": name,
                "goal": goal,
                "progress": min(1.0, t.counts["accepted"] / goal) if goal else 1.0,
                "counts": {"queries": queries.get(sid, 0), **t.counts},
                "votes_last_hour": last_hour.get(sid, 0),
                "agreement": t.agreement,
                # Learned by `synset consensus` (consensus/hard_items.py); None: not yet.
                "hard_share": float(hard) if hard else None,
                "audit": audits[sid].as_json() if sid in audits else None,
            }
        )
    return rows


def _with_glosses(session: Session, rows: list[dict]) -> list[dict[str, object]]:
    ids = [r["id"] for r in rows]
    glosses = dict(session.execute(select(Synset.id, Synset.gloss).where(Synset.id.in_(ids))).all())
    return [
        {**{k: v for k, v in r.items() if k != "id"}, "gloss": glosses.get(r["id"], "")}
        for r in rows
    ]


def synset_rows(session: Session, wnid: str | None = None) -> list[dict[str, object]]:
    """The funnel per target synset plus goal progress, votes in the last hour and agreement."""
    return _with_glosses(session, _rows(session, wnid))


PER_PAGE = 50
# Sort key -> (value of a row, descending unless asked otherwise). Ties: by wnid.
SORTS: dict[str, tuple[Callable[[dict], object], bool]] = {
    "name": (lambda r: r["name"].casefold(), False),
    "progress": (lambda r: r["progress"], False),  # furthest from its goal first
    "pending": (lambda r: r["counts"]["pending"], True),
    "agreement": (lambda r: r["agreement"], False),  # hardest first
    "hard": (lambda r: r["hard_share"], True),  # the most items the crowd cannot tell first
    "votes_per_hour": (lambda r: r["votes_last_hour"], True),
}


@dataclass(frozen=True)
class SynsetPage:
    """One page of the dashboard's synset table, as asked for."""

    rows: list[dict[str, object]]
    total: int  # synsets matching the filter
    page: int
    pages: int
    sort: str
    descending: bool
    q: str


def synset_page(
    session: Session,
    *,
    sort: str = "name",
    descending: bool | None = None,
    q: str = "",
    page: int = 1,
) -> SynsetPage:
    """Filter by name or wnid, sort, cut one page of :data:`PER_PAGE`: 1,000 or 21,000
    synsets stay one screen. Sorting every row in Python costs milliseconds."""
    key, default = SORTS[sort]
    descending = default if descending is None else descending
    rows = _rows(session)
    needle = q.strip().casefold()
    if needle:
        rows = [r for r in rows if needle in r["name"].casefold() or needle in r["wnid"].casefold()]
    cut, total, page, pages = _one_page(rows, key, lambda r: r["wnid"], descending, page)
    return SynsetPage(_with_glosses(session, cut), total, page, pages, sort, descending, q)


def _one_page(
    rows: list[Row],
    key: Callable[[Row], object],
    tie: Callable[[Row], str],
    descending: bool,
    page: int,
) -> tuple[list[Row], int, int, int]:
    """Sort by ``key`` (ties by ``tie``, rows without a value last), then cut page
    ``page`` of :data:`PER_PAGE` (past the last: the last). Returns the rows, how
    many there were, the page and the page count."""
    known = sorted((r for r in rows if key(r) is not None), key=tie)
    known.sort(key=key, reverse=descending)  # type: ignore[arg-type]
    rows = known + [r for r in rows if key(r) is None]  # e.g. no agreement yet
    pages = max(1, -(-len(rows) // PER_PAGE))
    page = min(max(page, 1), pages)
    return rows[(page - 1) * PER_PAGE : page * PER_PAGE], len(rows), page, pages


@dataclass(frozen=True)
class AnnotatorRow:
    id: int
    username: str
    role: str
    disabled: bool
    worker_id: str | None
    completion_code: str | None
    votes: int
    seconds_per_vote: float | None
    gold_answered: int
    gold_accuracy: float | None
    consensus_agreement: float | None
    consensus_decided: int  # decided items it is measured on: 100% of 4 is little
    # Why consensus stopped counting their votes (spammer, near chance), or None.
    excluded: str | None = None


def annotator_rows(session: Session) -> list[AnnotatorRow]:
    """Per annotator: volume, speed, gold accuracy and agreement with decided items,
    from the kept figures (tally.read_annotators), not a scan of every vote."""
    planner_default(session)
    figures = tally.read_annotators(session)
    excluded = dict(
        session.execute(
            select(AnnotatorQuality.annotator_id, AnnotatorQuality.exclusion_reason).where(
                AnnotatorQuality.excluded
            )
        ).all()
    )
    rows = []
    for a in session.scalars(select(Annotator).order_by(Annotator.username)):
        f = figures.get(a.id, dict.fromkeys(tally.VOTER, 0))
        rows.append(
            AnnotatorRow(
                id=a.id,
                username=a.username,
                role=a.role,
                disabled=a.disabled,
                worker_id=a.worker_id,
                completion_code=a.completion_code,
                votes=f["votes"],
                seconds_per_vote=_ratio(f["time_ms"] / 1000, f["timed_votes"]),
                gold_answered=f["gold_answered"],
                gold_accuracy=_ratio(f["gold_correct"], f["gold_answered"]),
                consensus_agreement=_ratio(f["agreed"], f["decided"]),
                consensus_decided=f["decided"],
                excluded=(excluded[a.id] or "excluded") if a.id in excluded else None,
            )
        )
    return rows


# Annotator table: sort key -> (value of a row, descending unless asked otherwise).
# Ties by name; a figure nobody measured yet (no vote, no gold) sorts last.
ANNOTATOR_SORTS: dict[str, tuple[Callable[[AnnotatorRow], object], bool]] = {
    "name": (lambda a: a.username.casefold(), False),
    "votes": (lambda a: a.votes, True),
    "speed": (lambda a: a.seconds_per_vote, False),  # fastest (a clicker?) first
    "gold": (lambda a: a.gold_accuracy, False),  # worst first
    "agreement": (lambda a: a.consensus_agreement, False),  # worst first
}


@dataclass(frozen=True)
class AnnotatorPage:
    """One page of the dashboard's annotator table: a crowd of thousands stays one screen."""

    rows: list[AnnotatorRow]
    total: int  # annotators matching the filter
    page: int
    pages: int
    sort: str
    descending: bool
    q: str


def annotator_page(
    session: Session,
    *,
    sort: str = "name",
    descending: bool | None = None,
    q: str = "",
    page: int = 1,
) -> AnnotatorPage:
    """Filter by name or crowd id, sort, cut one page of :data:`PER_PAGE`."""
    key, default = ANNOTATOR_SORTS[sort]
    descending = default if descending is None else descending
    rows = annotator_rows(session)
    needle = q.strip().casefold()
    if needle:
        rows = [
            a
            for a in rows
            if needle in a.username.casefold() or needle in (a.worker_id or "").casefold()
        ]
    cut, total, page, pages = _one_page(rows, key, lambda a: a.username, descending, page)
    return AnnotatorPage(cut, total, page, pages, sort, descending, q)


def _ratio(part: float, whole: int) -> float | None:
    return part / whole if whole else None


def open_reports(session: Session) -> list[dict[str, object]]:
    stmt = (
        select(Report, Image.id, Annotator.username)
        .join(Image, Image.id == Report.image_id)
        .join(Annotator, Annotator.id == Report.annotator_id)
        .where(Report.resolution.is_(None))
        .order_by(Report.created_at)
    )
    return [
        {"id": r.id, "image_id": image_id, "reason": r.reason, "by": who, "at": r.created_at}
        for r, image_id, who in session.execute(stmt)
    ]


def votes_csv(session: Session) -> Iterator[str]:
    """All votes as ``item,worker,label`` (the format ``synset votes import`` reads) + context."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["item", "worker", "label", "wnid", "time_ms", "created_at"])
    stmt = (
        select(
            Vote.candidate_id,
            Annotator.username,
            Vote.answer,
            Synset.wnid,
            Vote.time_ms,
            Vote.created_at,
        )
        .join(Annotator, Annotator.id == Vote.annotator_id)
        .join(Candidate, Candidate.id == Vote.candidate_id)
        .join(Synset, Synset.id == Candidate.synset_id)
        .order_by(Vote.id)
        .execution_options(yield_per=2000)
    )
    for item, who, answer, wnid, ms, at in session.execute(stmt):
        writer.writerow([item, who, int(answer), wnid, "" if ms is None else ms, at.isoformat()])
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
