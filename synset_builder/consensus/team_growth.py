"""When the team grows, the items closed because nobody was left open again.

The dynamic rule closes an item every team member has voted on: decided if it
can be, else ``undecided`` with the reason "no annotator left who has not voted
on it" (:data:`~synset_builder.consensus.dynamic.NO_VOTERS`). That reason stops
being true the moment someone joins who has not voted on it: a curator adds an
annotator, enables one again, or a crowd worker arrives through the study link
(or a vote file names a new worker). The live path decides an item again only
when it gets a vote, so without this a newcomer found "All caught up" while
dozens of items waited for one more voter, until someone ran ``synset
consensus`` (whose replay counts the newcomer and reopens them).

Only those items, and only the ones the newcomer has not voted on: an item
closed by the cap, by "more votes could not settle it", or decided, stays as it
is. The reopened rows are ``pending`` again and are served (to the newcomer
first of all, the only one who can take them); the next vote decides them with
the rule as always.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from synset_builder.consensus.dynamic import NO_VOTERS
from synset_builder.consensus.live_sql import team_clause
from synset_builder.db.models import Annotator, AnnotatorQuality, Consensus, Vote
from synset_builder.decision import Decision


def on_team(session: Session, annotator_ids: Collection[int]) -> list[int]:
    """Those of ``annotator_ids`` the rule waits for (:func:`.live_sql.team_clause`)."""
    if not annotator_ids:
        return []
    return list(
        session.scalars(
            select(Annotator.id)
            .outerjoin(AnnotatorQuality, AnnotatorQuality.annotator_id == Annotator.id)
            .where(Annotator.id.in_(sorted(annotator_ids)), team_clause())
        )
    )


def reopen_for(session: Session, annotator_ids: Collection[int]) -> int:
    """Reopen, in the caller's transaction, the items closed for want of a voter that
    one of ``annotator_ids`` (now on the team) has not voted on; returns how many.

    One statement for any number of newcomers: ``votes import`` names a file's new
    workers together, and a scan of the decisions per worker would be one per worker.
    """
    session.flush()
    members = on_team(session, annotator_ids)
    if not members:
        return 0
    voted = (
        select(func.count())
        .where(Vote.candidate_id == Consensus.candidate_id, Vote.annotator_id.in_(members))
        .scalar_subquery()
    )
    done = session.execute(
        update(Consensus)
        .where(
            Consensus.decision == Decision.undecided,
            Consensus.reason == NO_VOTERS,
            voted < len(members),
        )
        .values(decision=Decision.pending, reason=None)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()  # rows written in Core
    return int(done.rowcount or 0)
