"""Which items still need votes, and what a submit does to their consensus state.

The consensus stage owns the rule (:mod:`synset_builder.consensus.live`, ImageNet's
dynamic consensus); the web app asks it through these functions only, so the
serving code never re-derives "decided" on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from synset_builder.consensus import live
from synset_builder.consensus.dynamic import DynamicConfig
from synset_builder.db.bulk import in_list
from synset_builder.db.models import Candidate, Consensus, Requeue


def open_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate``: the item still needs votes."""
    return live.open_clause()


def open_joined() -> ColumnElement[bool]:
    """:func:`open_clause` where ``Consensus`` is outer-joined to ``Candidate``: for a
    test in a select list or under ``OR`` (see ``live.open_joined``)."""
    return live.open_joined()


def priority_order() -> list[ColumnElement]:
    """Order-by terms: the consensus method's preferred items first (initial subset)."""
    return list(live.priority_order())


def initial_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate``: in its synset's initial subset."""
    return exists().where(Consensus.candidate_id == Candidate.id, Consensus.initial)


def requeued_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate``: sent back for more votes, not yet re-decided."""
    return Candidate.id.in_(select(Requeue.candidate_id).where(Requeue.resolved_at.is_(None)))


def serving_tiers(postgresql: bool) -> list[ColumnElement[bool]]:
    """``open_clause() AND tier`` for each tier of :func:`priority_order`, first tier first.

    Each tier is served in serve-key order before the next one. Serving tier by
    tier lets a fetch read a page through the ``ix_candidate_serve_key`` index
    instead of ranking every candidate of the synset (the old sort grew with the synset), and
    each tier spells out "still open" in a form the planner can drive from the
    small side (the initial subset, the requeue rows) or check by primary key.
    The first tier takes the synset's initial subset as the list parameter
    ``initial`` (``Synset.initial_ids``): a consensus row does not know its synset.
    The last tier walks ``ix_candidate_serve_open``, which holds only candidates not
    yet settled (``Candidate.settled``), so its cost does not grow as items are
    decided.
    """
    initial_open = and_(
        in_list(Candidate.id, "initial", postgresql),
        exists().where(
            Consensus.candidate_id == Candidate.id,
            or_(~live.decided(), requeued_clause()),
        ),
    )
    settled = exists().where(
        Consensus.candidate_id == Candidate.id,
        or_(Consensus.initial, live.decided()),
    )
    return [
        initial_open,
        and_(requeued_clause(), ~initial_clause()),
        # The flag first: it is what ix_candidate_serve_open leaves out, so the walk
        # meets no settled item; the consensus row still decides (the flag may lag).
        and_(~Candidate.settled, ~settled, ~requeued_clause()),
    ]


def after_votes(
    session: Session, candidate_ids: Sequence[int], config: DynamicConfig, voter: int
) -> None:
    """Update consensus for the items ``voter`` just voted on, inside the submit transaction;
    decisions an exclusion reopens follow once it commits (:func:`live.reopen_deferred`)."""
    if candidate_ids:
        live.after_votes(session, candidate_ids, config=config, voter=voter, defer_reopen=True)


def exclusion_reason(session: Session, annotator_id: int) -> str | None:
    """Why consensus stopped trusting this annotator's votes, or None if it still does."""
    if live.may_vote(session, annotator_id):
        return None
    return live.exclusion_reason(session, annotator_id) or "low agreement with other annotators"
