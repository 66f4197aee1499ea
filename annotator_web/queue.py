"""Which items still need votes, and what a submit does to their consensus state.

The consensus stage owns the rule (:mod:`synset_builder.consensus.live`, ImageNet's
dynamic consensus); the web app asks it through these functions only, so the
serving code never re-derives "decided" on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from synset_builder.consensus import live


def open_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate``: the item still needs votes."""
    return live.open_clause()


def priority_order() -> list[ColumnElement]:
    """Order-by terms: the consensus method's preferred items first (initial subset)."""
    return list(live.priority_order())


def after_votes(session: Session, candidate_ids: Sequence[int]) -> None:
    """Update consensus for the items just voted on, inside the submit transaction."""
    if candidate_ids:
        live.after_votes(session, candidate_ids)


def exclusion_reason(session: Session, annotator_id: int) -> str | None:
    """Why consensus stopped trusting this annotator's votes, or None if it still does."""
    if live.may_vote(session, annotator_id):
        return None
    return live.exclusion_reason(session, annotator_id) or "low agreement with other annotators"
