"""Annotator quality: skill from gold answers and from the consensus model.

Two kinds of evidence, one formula. Gold items give hard counts (truth known);
decided items give soft counts (truth weighted by the posterior). Both feed a
sensitivity ``P(yes | yes)`` and specificity ``P(no | no)`` shrunk toward a pool
value with ``shrink`` pseudo-votes, so a newcomer counts as an average annotator
rather than a perfect one. Balanced accuracy (their mean) is the one-number
skill curators see; an annotator whose skill stays below the floor after enough
votes is excluded from consensus and from serving, and the reason is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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

POOL_SKILL = 0.8
COUNT_KEYS = ("yy", "yn", "ny", "nn")  # (truth, vote): yes-yes, yes-no, no-yes, no-no


@dataclass(frozen=True)
class Skill:
    sensitivity: float
    specificity: float
    excluded: bool = False

    @property
    def balanced_accuracy(self) -> float:
        return (self.sensitivity + self.specificity) / 2


@dataclass(frozen=True)
class ExclusionRule:
    """Exclude annotators whose balanced accuracy is below ``floor`` over ``min_votes``."""

    floor: float = 0.6
    min_votes: int = 20

    def reason(self, skill: float, votes: int, gold_total: int, gold_correct: int) -> str | None:
        if votes < self.min_votes:
            return None
        if gold_total >= self.min_votes // 2 and gold_correct / gold_total < self.floor:
            return (
                f"gold accuracy {gold_correct}/{gold_total} = {gold_correct / gold_total:.2f} "
                f"is below the floor {self.floor:.2f}"
            )
        if skill < self.floor:
            return (
                f"estimated skill {skill:.2f} over {votes} votes is below the floor "
                f"{self.floor:.2f}"
            )
        return None


def skill_from_counts(
    counts: Mapping[str, float], *, shrink: float = 10.0, pool: float = POOL_SKILL
) -> tuple[float, float]:
    """Sensitivity and specificity from (truth, vote) counts, shrunk toward ``pool``."""
    yy, yn, ny, nn = (float(counts.get(key, 0.0)) for key in COUNT_KEYS)
    sens = (yy + shrink * pool) / (yy + yn + shrink)
    spec = (nn + shrink * pool) / (ny + nn + shrink)
    return sens, spec


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


def merge_counts(*parts: Mapping[str, float]) -> dict[str, float]:
    return {key: float(sum(p.get(key, 0.0) for p in parts)) for key in COUNT_KEYS}


def skill_of(
    stored: Mapping[str, float] | None,
    excluded: bool | None,
    gold: Mapping[str, float],
    *,
    shrink: float = 10.0,
) -> Skill:
    """An annotator's current skill: stored model counts plus live gold counts
    (:func:`gold_tally`); consensus reads it for every voter of a submitted page."""
    sens, spec = skill_from_counts(merge_counts(stored or {}, gold), shrink=shrink)
    return Skill(sens, spec, excluded=bool(excluded))


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
