"""Undo of the page an annotator just submitted (a misclick, a wrong key).

A page's votes share one ``created_at`` (``submit.record_votes`` stamps them with
one clock reading), so the last page is the annotator's votes at their latest
``created_at``. Undo moves them to ``vote_undone`` (copied, then deleted from
``vote``: the counters' triggers see an ordinary vote delete), takes back the
page's "unsure" skips, counts the page off, re-decides the items the way a submit
does (``live.after_votes``), counts the annotator's raw answers again without it,
and leases the page to the annotator again, so the next task fetch serves it, its
answers shown as they were sent (``undone_answers``).

Only the annotator's own last page, only within ``web_undo_seconds`` of its
submit, and only once: a page before an undone one cannot be undone, which is
what keeps undo from walking back through someone's whole history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from annotator_web.serving.statements import Statements
from synset_builder.config import Settings
from synset_builder.consensus import live
from synset_builder.consensus.model import ANSWER_WINDOW
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Lease,
    Unsure,
    Vote,
    VoteUndone,
    utcnow,
)


class UndoRefused(Exception):
    """Nothing may be undone now; the message says why, in one line."""


@dataclass(frozen=True)
class Undone:
    votes: int  # votes moved to vote_undone
    leased: int  # items of the page leased to the annotator again


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last_page_at(session: Session, annotator_id: int, since: datetime) -> datetime | None:
    """When the annotator last submitted a page that recorded votes, if at ``since``
    or later (None: not since then).

    The bound is what keeps this cheap: on PostgreSQL the votes' BRIN index on
    ``created_at`` narrows the read to the last minute's blocks, where an unbounded
    ``max`` reads every vote the annotator ever cast.
    """
    stmt = select(func.max(Vote.created_at)).where(
        Vote.annotator_id == annotator_id, Vote.created_at >= since
    )
    at = session.scalar(stmt)
    return _utc(at) if at is not None else None


def _undone_since(session: Session, annotator_id: int, at: datetime) -> bool:
    """Whether a page was undone at ``at`` or later: then the page at ``at`` is not the
    annotator's last one."""
    stmt = select(VoteUndone.id).where(
        VoteUndone.annotator_id == annotator_id, VoteUndone.undone_at >= at
    )
    return session.scalar(stmt.limit(1)) is not None


def _window(cfg: Settings) -> tuple[datetime, datetime]:
    """(now, the earliest submit time that may still be undone)."""
    now = utcnow()
    return now, now - timedelta(seconds=cfg.web.undo_seconds)


def seconds_left(session: Session, annotator_id: int, cfg: Settings) -> float:
    """How long the annotator may still undo their last page (0: not at all)."""
    if cfg.web.undo_seconds <= 0:
        return 0.0
    now, since = _window(cfg)
    at = last_page_at(session, annotator_id, since)
    if at is None or _undone_since(session, annotator_id, at):
        return 0.0
    return max(0.0, cfg.web.undo_seconds - (now - at).total_seconds())


def undo_last_page(
    session: Session, sql: Statements, *, annotator_id: int, cfg: Settings
) -> Undone:
    """Take back the annotator's last page; :class:`UndoRefused` says why not.

    Runs in the caller's transaction. On PostgreSQL the page's vote rows are locked
    first, so of two concurrent undos of one page the second finds nothing to undo.
    """
    if cfg.web.undo_seconds <= 0:
        raise UndoRefused("Undo is turned off on this server.")
    now, since = _window(cfg)
    at = last_page_at(session, annotator_id, since)
    if _undone_since(session, annotator_id, at or since):
        raise UndoRefused("Your last page was already undone; only the last page can be undone.")
    if at is None:
        raise UndoRefused(
            f"Nothing to undo: you submitted no page in the last {cfg.web.undo_seconds} s "
            "(a page can be undone only that long)."
        )
    page = select(Vote.id).where(Vote.annotator_id == annotator_id, Vote.created_at == at)
    vote_ids = list(session.scalars(sql.locked(page)))
    if not vote_ids:  # a concurrent undo moved them while this one waited
        raise UndoRefused("Your last page was already undone.")
    conn = session.connection()
    copied = select(
        Vote.id, Vote.candidate_id, Vote.annotator_id, Vote.answer, Vote.time_ms,
        Vote.created_at, literal(now, VoteUndone.undone_at.type),
    ).where(Vote.id.in_(vote_ids))  # fmt: skip
    columns = ["vote_id", "candidate_id", "annotator_id", "answer", "time_ms", "created_at",
               "undone_at"]  # fmt: skip
    conn.execute(insert(VoteUndone).from_select(columns, copied))
    items = list(
        conn.execute(
            delete(Vote).where(Vote.id.in_(vote_ids)).returning(Vote.candidate_id)
        ).scalars()
    )
    skipped = list(
        conn.execute(
            delete(Unsure)
            .where(Unsure.annotator_id == annotator_id, Unsure.created_at == at)
            .returning(Unsure.candidate_id)
        ).scalars()
    )
    conn.execute(
        update(Annotator)
        .where(Annotator.id == annotator_id, Annotator.pages_done > 0)
        .values(pages_done=Annotator.pages_done - 1)
    )
    session.expire_all()  # rows above were written in Core
    live.after_votes(
        session, items, config=cfg.consensus, voter=annotator_id, defer_reopen=True,
        sql=sql.live,
    )  # fmt: skip
    _recount_answers(session, annotator_id)
    leased = _lease_again(session, sql, annotator_id, items + skipped, cfg)
    return Undone(votes=len(items), leased=leased)


def undone_answers(
    session: Session, annotator_id: int, candidate_ids: list[int]
) -> dict[int, bool]:
    """The answers the annotator's last undo took back, for those of ``candidate_ids``
    it covered: the page served after an undo shows them as they were sent.

    Undo is there to fix a wrong tile or two; a page that came back all "no" made the
    annotator answer every tile again. Only the last undone page: an older one's
    answers were taken back and answered again since.
    """
    if not candidate_ids:
        return {}
    last = (
        select(func.max(VoteUndone.undone_at))
        .where(VoteUndone.annotator_id == annotator_id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(VoteUndone.candidate_id, VoteUndone.answer).where(
            VoteUndone.annotator_id == annotator_id,
            VoteUndone.undone_at == last,
            VoteUndone.candidate_id.in_(candidate_ids),
        )
    )
    return {candidate: bool(answer) for candidate, answer in rows}


def _recount_answers(session: Session, annotator_id: int) -> None:
    """The annotator's record of raw answers, counted again over their first
    :data:`~synset_builder.consensus.model.ANSWER_WINDOW` votes without the undone page.

    A submit counts each answer within that window (the always-the-same-answer
    check reads it); left as it was, a page undone and answered again would count
    twice. Written after the consensus rows, as a submit writes its records.
    """
    first = (
        select(Vote.answer)
        .where(Vote.annotator_id == annotator_id)
        .order_by(Vote.id)
        .limit(ANSWER_WINDOW)
        .subquery()
    )
    yes, total = session.execute(
        select(
            func.coalesce(func.sum(case((first.c.answer, 1), else_=0)), 0), func.count()
        ).select_from(first)
    ).one()
    session.execute(
        update(AnnotatorQuality)
        .where(AnnotatorQuality.annotator_id == annotator_id)
        .values(answered_yes=float(yes), answered_no=float(total - yes))
    )


def _lease_again(
    session: Session, sql: Statements, annotator_id: int, items: list[int], cfg: Settings
) -> int:
    """Give the annotator back the undone page: the page they hold now goes back to
    the queue, the undone items are leased to them where nobody else took them."""
    now = utcnow()
    session.execute(
        update(Lease)
        .where(Lease.annotator_id == annotator_id, Lease.expires_at > now)
        .values(expires_at=now)
    )
    return len(sql.lease(session.connection(), set(items), annotator_id, cfg.web.lease_seconds))
