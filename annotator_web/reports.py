"""Reports ("report this image"): an annotator takes an image out of every queue.

The image stays out until a curator keeps it (back in the queues) or removes it
(out for good, still nothing deleted); see ``synset_builder.pool.not_reported_clause``.

One annotator may file only so many reports an hour (``SYNSET_WEB_REPORTS_PER_HOUR``):
three throwaway crowd accounts emptied a synset's queue in seconds by reporting
every item they were shown. A curator sees the reports each account filed
(``synset users list``, ``synset users reports NAME``) and dismisses all of one
account's open reports at once (``--dismiss``), which puts the items back in service.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from annotator_web.throttle import TooManyAttempts, lock_keys
from synset_builder.db.models import Annotator, Candidate, Lease, Report, Vote, utcnow
from synset_builder.errors import InvalidInput, NotFound

# A curator's bulk answer to one account's reports: the images go back in service.
DISMISSED = "dismissed"

REPORT_REASONS = {
    "offensive": "Offensive",
    "private": "Private or personal",
    "licence": "Wrong licence",
}


def report_image(
    session: Session, *, annotator: Annotator, candidate_id: int, reason: str, per_hour: int
) -> None:
    """Take the candidate's image out of every queue until a curator decides.

    Raises :class:`TooManyAttempts` (nothing recorded) past ``per_hour`` reports in
    the last hour. The report is written, then counted with the others, under a lock
    on the annotator (throttle.lock_keys): parallel reports cannot all slip under.
    """
    if reason not in REPORT_REASONS:
        raise InvalidInput(f"Unknown report reason {reason!r}: use {', '.join(REPORT_REASONS)}.")
    image_id = session.scalar(select(Candidate.image_id).where(Candidate.id == candidate_id))
    seen = session.scalar(
        select(
            exists().where(Lease.candidate_id == candidate_id, Lease.annotator_id == annotator.id)
            | exists().where(Vote.candidate_id == candidate_id, Vote.annotator_id == annotator.id)
        )
    )
    if image_id is None or not seen:
        # Only what was shown to you can be reported: nobody can empty the queues blindly.
        raise NotFound(f"Item {candidate_id} was not shown to you.")
    already = session.scalar(
        select(exists().where(Report.image_id == image_id, Report.resolution.is_(None)))
    )
    if not already:
        lock_keys(session, f"report:{annotator.id}")
        session.add(Report(image_id=image_id, annotator_id=annotator.id, reason=reason))
        session.flush()
        filed = session.scalar(
            select(func.count(Report.id)).where(
                Report.annotator_id == annotator.id,
                Report.created_at >= utcnow() - timedelta(hours=1),
            )
        )
        if filed > per_hour:
            session.rollback()
            raise TooManyAttempts(
                f"You reported {per_hour} images in the last hour, the most one account "
                "may; a curator will look at them. Try again later."
            )
    session.execute(
        update(Lease)
        .where(Lease.candidate_id == candidate_id, Lease.annotator_id == annotator.id)
        .values(expires_at=utcnow())
    )


def open_reports_by(session: Session, annotator_id: int) -> list[tuple[int, int, str, datetime]]:
    """The annotator's reports no curator has answered: (report, image, reason, filed)."""
    return [
        tuple(row)
        for row in session.execute(
            select(Report.id, Report.image_id, Report.reason, Report.created_at)
            .where(Report.annotator_id == annotator_id, Report.resolution.is_(None))
            .order_by(Report.created_at, Report.id)
        )
    ]


def dismiss_reports_by(session: Session, annotator_id: int) -> int:
    """Dismiss every open report of one annotator (a flood); how many.

    Their images go back in service at once (``pool.not_reported_clause`` only
    keeps out open and removed reports); the rows stay, marked ``dismissed``.
    """
    done = session.execute(
        update(Report)
        .where(Report.annotator_id == annotator_id, Report.resolution.is_(None))
        .values(resolution=DISMISSED, resolved_at=utcnow())
    )
    return done.rowcount
