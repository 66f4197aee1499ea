"""Reports ("report this image"): an annotator takes an image out of every queue.

The image stays out until a curator keeps it (back in the queues) or removes it
(out for good, still nothing deleted); see ``synset_builder.pool.not_reported_clause``.
"""

from __future__ import annotations

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from annotator_web.tasks import now_utc
from synset_builder.db.models import Annotator, Candidate, Lease, Report, Vote
from synset_builder.errors import InvalidInput, NotFound

REPORT_REASONS = {
    "offensive": "Offensive",
    "private": "Private or personal",
    "licence": "Wrong licence",
}


def report_image(session: Session, *, annotator: Annotator, candidate_id: int, reason: str) -> None:
    """Take the candidate's image out of every queue until a curator decides."""
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
        session.add(Report(image_id=image_id, annotator_id=annotator.id, reason=reason))
    session.execute(
        update(Lease)
        .where(Lease.candidate_id == candidate_id, Lease.annotator_id == annotator.id)
        .values(expires_at=now_utc())
    )
