"""Numbers for people: an annotator's own progress and the curator's dashboard.

Each figure is one grouped query over votes, gold and consensus, so the
dashboard stays quick on a busy database and the JSON API returns the same
numbers as the pages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from annotator_web.tasks import now_utc
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Image,
    Report,
    Synset,
    Vote,
)
from synset_builder.status import funnel


def _start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _gold_hits():  # noqa: ANN202 - a SQL expression
    return func.sum(case((Vote.answer == Gold.answer, 1), else_=0))


def my_stats(session: Session, annotator: Annotator) -> dict[str, object]:
    """What the progress bar on the task page shows."""
    now = now_utc()
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


def synset_rows(session: Session, wnid: str | None = None) -> list[dict[str, object]]:
    """The funnel per target synset plus goal progress, votes in the last hour and agreement."""
    rows = [r for r in funnel(session) if (r.wnid == wnid if wnid else r.target)]
    since = now_utc() - timedelta(hours=1)
    last_hour = dict(
        session.execute(
            select(Synset.wnid, func.count(Vote.id))
            .join(Candidate, Candidate.synset_id == Synset.id)
            .join(Vote, Vote.candidate_id == Candidate.id)
            .where(Vote.created_at >= since)
            .group_by(Synset.wnid)
        ).all()
    )
    agreement = _agreement(session)
    glosses = dict(session.execute(select(Synset.wnid, Synset.gloss)).all())
    return [
        {
            "wnid": r.wnid,
            "name": r.name,
            "gloss": glosses.get(r.wnid, ""),
            "goal": r.goal,
            "progress": min(1.0, r.counts.get("accepted", 0) / r.goal) if r.goal else 1.0,
            "counts": r.counts,
            "votes_last_hour": last_hour.get(r.wnid, 0),
            "agreement": agreement.get(r.wnid),
        }
        for r in rows
    ]


def _agreement(session: Session) -> dict[str, float]:
    """Mean share of voters agreeing with the majority, over items with two votes or more."""
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
    major = case(
        (per_item.c.yes * 2 >= per_item.c.n, per_item.c.yes), else_=per_item.c.n - per_item.c.yes
    )
    stmt = (
        select(Synset.wnid, func.avg(major * 1.0 / per_item.c.n))
        .join(per_item, per_item.c.sid == Synset.id)
        .group_by(Synset.wnid)
    )
    return {wnid: float(v) for wnid, v in session.execute(stmt)}


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
    # Why consensus stopped counting their votes (spammer, near chance), or None.
    excluded: str | None = None


def annotator_rows(session: Session) -> list[AnnotatorRow]:
    """Per annotator: volume, speed, gold accuracy and agreement with decided items."""
    volume = {
        aid: (n, ms)
        for aid, n, ms in session.execute(
            select(Vote.annotator_id, func.count(Vote.id), func.avg(Vote.time_ms)).group_by(
                Vote.annotator_id
            )
        )
    }
    gold = {
        aid: (n, hits)
        for aid, n, hits in session.execute(
            select(Vote.annotator_id, func.count(Vote.id), _gold_hits())
            .join(Gold, Gold.candidate_id == Vote.candidate_id)
            .group_by(Vote.annotator_id)
        )
    }
    agrees = case(((Vote.answer.is_(True)) == (Consensus.decision == "accepted"), 1), else_=0)
    consensus = {
        aid: (n, hits)
        for aid, n, hits in session.execute(
            select(Vote.annotator_id, func.count(Vote.id), func.sum(agrees))
            .join(Consensus, Consensus.candidate_id == Vote.candidate_id)
            .where(Consensus.decision.in_(("accepted", "rejected")))
            .group_by(Vote.annotator_id)
        )
    }
    excluded = dict(
        session.execute(
            select(AnnotatorQuality.annotator_id, AnnotatorQuality.exclusion_reason).where(
                AnnotatorQuality.excluded
            )
        ).all()
    )
    rows = []
    for a in session.scalars(select(Annotator).order_by(Annotator.username)):
        n, ms = volume.get(a.id, (0, None))
        gn, gh = gold.get(a.id, (0, 0))
        cn, ch = consensus.get(a.id, (0, 0))
        rows.append(
            AnnotatorRow(
                id=a.id,
                username=a.username,
                role=a.role,
                disabled=a.disabled,
                worker_id=a.worker_id,
                completion_code=a.completion_code,
                votes=n,
                seconds_per_vote=float(ms) / 1000 if ms is not None else None,
                gold_answered=gn,
                gold_accuracy=(gh or 0) / gn if gn else None,
                consensus_agreement=(ch or 0) / cn if cn else None,
                excluded=(excluded[a.id] or "excluded") if a.id in excluded else None,
            )
        )
    return rows


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
