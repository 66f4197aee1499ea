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
    JSON,
    Boolean,
    CompoundSelect,
    Select,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from synset_builder.db.bulk import in_list
from synset_builder.db.models import AnnotatorQuality, Gold, Vote
from synset_builder.db.session import on_postgresql

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


@cache
def _gold_counts_stmt() -> Select[tuple[int, bool, bool, int]]:
    return (
        select(Vote.annotator_id, Gold.answer, Vote.answer, func.count())
        .join(Gold, Gold.candidate_id == Vote.candidate_id)
        .where(Vote.annotator_id.in_(bindparam("ids", expanding=True)))
        .group_by(Vote.annotator_id, Gold.answer, Vote.answer)
    )


@cache
def _skills_stmt(postgresql: bool) -> CompoundSelect:
    """Stored counts (kind "s") and gold counts (kind "g") of ``ids`` in one round trip."""
    stored = select(
        literal("s").label("kind"),
        AnnotatorQuality.annotator_id,
        AnnotatorQuality.counts,
        AnnotatorQuality.excluded,
        cast(null(), Boolean).label("truth"),
        cast(null(), Boolean).label("answer"),
        literal(0).label("n"),
    ).where(in_list(AnnotatorQuality.annotator_id, "ids", postgresql))
    gold = (
        select(
            literal("g"),
            Vote.annotator_id,
            cast(null(), JSON),
            cast(null(), Boolean),
            Gold.answer,
            Vote.answer,
            func.count(),
        )
        .join(Gold, Gold.candidate_id == Vote.candidate_id)
        .where(in_list(Vote.annotator_id, "ids", postgresql))
        .group_by(Vote.annotator_id, Gold.answer, Vote.answer)
    )
    return union_all(stored, gold)


def gold_counts(session: Session, annotator_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per annotator, their (truth, vote) counts on gold items: one GROUP BY."""
    ids = list(annotator_ids)
    out: dict[int, dict[str, int]] = {a: dict.fromkeys(COUNT_KEYS, 0) for a in ids}
    if not ids:
        return out
    for annotator, truth, answer, n in session.execute(_gold_counts_stmt(), {"ids": ids}):
        out[annotator][("y" if truth else "n") + ("y" if answer else "n")] += n
    return out


def merge_counts(*parts: Mapping[str, float]) -> dict[str, float]:
    return {key: float(sum(p.get(key, 0.0) for p in parts)) for key in COUNT_KEYS}


def annotator_skills(
    session: Session, annotator_ids: Iterable[int], *, shrink: float = 10.0
) -> dict[int, Skill]:
    """Current skill of each annotator: stored model counts plus live gold counts.

    Runs in every web submit, hence the prebuilt statements (see ``consensus.live_sql``).
    """
    ids = sorted(set(annotator_ids))
    if not ids:
        return {}
    stored: dict[int, tuple[Mapping[str, float], bool]] = {}
    gold: dict[int, dict[str, float]] = {a: dict.fromkeys(COUNT_KEYS, 0.0) for a in ids}
    postgresql = on_postgresql(session)
    for kind, a, counts, excluded, truth, answer, n in session.connection().execute(
        _skills_stmt(postgresql), {"ids": ids}
    ):
        if kind == "s":
            stored[a] = (counts or {}, bool(excluded))
        else:
            gold[a][("y" if truth else "n") + ("y" if answer else "n")] += n
    skills: dict[int, Skill] = {}
    for a in ids:
        counts, excluded = stored.get(a, ({}, False))
        sens, spec = skill_from_counts(merge_counts(counts, gold[a]), shrink=shrink)
        skills[a] = Skill(sens, spec, excluded=excluded)
    return skills


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
