"""Annotator quality as the database keeps it: gold tallies, exclusions, the report.

The skill model itself (counts, the skeptical newcomer, the exclusion rule) is
:mod:`.model`; this module holds the queries around it: per annotator, their
(truth, vote) counts on gold items, whether they are excluded and why, and the
report curators read (``synset consensus annotators``, the dashboard).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from sqlalchemy import (
    BindParameter,
    Select,
    Subquery,
    and_,
    bindparam,
    case,
    false,
    func,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased

from synset_builder.db.models import AnnotatorQuality, Gold, Vote

COUNT_KEYS = ("yy", "yn", "ny", "nn")  # (truth, vote): yes-yes, yes-no, no-yes, no-no


def gold_tally(voters: Select[tuple[int]] | BindParameter) -> Subquery:
    """Per annotator among ``voters`` (a query, or a list parameter): their (truth, vote)
    counts on gold items, one row each (columns ``voter`` and :data:`COUNT_KEYS`)."""
    vote = aliased(Vote)
    said = {"y": vote.answer.is_(true()), "n": vote.answer.is_(false())}
    truth = {"y": Gold.answer.is_(true()), "n": Gold.answer.is_(false())}
    counts = [
        func.sum(case((and_(truth[key[0]], said[key[1]]), 1), else_=0)).label(key)
        for key in COUNT_KEYS
    ]
    return (
        select(vote.annotator_id.label("voter"), *counts)
        .join(Gold, Gold.candidate_id == vote.candidate_id)
        .where(vote.annotator_id.in_(voters))
        .group_by(vote.annotator_id)
        .subquery("gold_tally")
    )


def gold_counts(session: Session, annotator_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per annotator, their (truth, vote) counts on gold items (:func:`gold_tally`)."""
    ids = list(annotator_ids)
    out: dict[int, dict[str, int]] = {a: dict.fromkeys(COUNT_KEYS, 0) for a in ids}
    if not ids:
        return out
    for voter, *counts in session.execute(_gold_counts_stmt(), {"ids": ids}):
        out[voter] = {key: int(n) for key, n in zip(COUNT_KEYS, counts, strict=True)}
    return out


@cache
def _gold_counts_stmt() -> Select:
    return select(gold_tally(bindparam("ids", expanding=True)))


def may_vote(session: Session, annotator_id: int) -> bool:
    """False for an annotator excluded for low skill (the web app stops serving them)."""
    excluded = session.scalar(
        select(AnnotatorQuality.excluded).where(AnnotatorQuality.annotator_id == annotator_id)
    )
    return not excluded


def exclusion_reason(session: Session, annotator_id: int) -> str | None:
    """Why an annotator was excluded, for the page that tells them so."""
    return session.scalar(
        select(AnnotatorQuality.exclusion_reason).where(
            AnnotatorQuality.annotator_id == annotator_id, AnnotatorQuality.excluded
        )
    )


def quality_report(session: Session) -> list[dict[str, object]]:
    """Every measured annotator, worst skill first: what a curator reviews."""
    from synset_builder.db.models import Annotator

    stmt = select(AnnotatorQuality, Annotator.username).join(
        Annotator, Annotator.id == AnnotatorQuality.annotator_id
    )
    rows = [
        {
            "username": name,
            "votes": q.votes,
            "gold_total": q.gold_total,
            "gold_correct": q.gold_correct,
            "sensitivity": round(q.sensitivity, 4),
            "specificity": round(q.specificity, 4),
            "skill": round((q.sensitivity + q.specificity) / 2, 4),
            "excluded": q.excluded,
            "exclusion_reason": q.exclusion_reason,
        }
        for q, name in session.execute(stmt)
    ]
    return sorted(rows, key=lambda r: (r["skill"], r["username"]))
