"""Voters' records on the request path: what one consensus update adds to them.

Split from :mod:`synset_builder.consensus.live` (the decisions) because the records
are a second write with rules of their own: only records that changed are
touched, as increments, in id order, so concurrent submits neither lose each
other's counts nor lock records in different orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from synset_builder.consensus.exclusion import ExclusionRule
from synset_builder.consensus.live_sql import RECORD_COLUMNS, RECORD_ROW, LiveStatements
from synset_builder.consensus.model import SkillState
from synset_builder.db.models import AnnotatorQuality


@dataclass
class Changes:
    """What this update adds to voters' records (credited counts, answers), per annotator."""

    counts: dict[int, dict[str, float]] = field(default_factory=dict)

    def _of(self, worker: int) -> dict[str, float]:
        keys = (*RECORD_COLUMNS, "votes")
        return self.counts.setdefault(worker, dict.fromkeys(keys, 0.0))

    def of(self, worker: int) -> dict[str, float]:
        """The additions for ``worker`` (zeros if none), as record columns."""
        got = self.counts.get(worker) or dict.fromkeys((*RECORD_COLUMNS, "votes"), 0.0)
        return {**got, "votes": int(got["votes"])}

    def credit(self, worker: int, label: int, probs: Sequence[float]) -> None:
        row = self._of(worker)
        row["nn" if label == 0 else "ny"] += probs[0]
        row["yn" if label == 0 else "yy"] += probs[1]

    def answer(self, worker: int, label: int) -> None:
        row = self._of(worker)
        row["answered_yes" if label else "answered_no"] += 1.0
        row["votes"] += 1


def judge(
    state: SkillState,
    rule: ExclusionRule,
    workers: Sequence[int],
    session: Session,
    sql: LiveStatements,
) -> dict[int, str]:
    """The workers the exclusion rule catches now, with the reason."""

    def others(worker: int) -> list[float]:
        no, yes = session.connection().execute(sql.others_answers, {"me": worker}).one()
        return [float(no or 0), float(yes or 0)]

    out = {}
    for w in dict.fromkeys(workers):
        reason = state.judge(w, rule, others)
        if reason is not None:
            out[w] = reason
    return out


def save_records(
    session: Session, changes: Changes, newly: Mapping[int, str], sql: LiveStatements
) -> None:
    """Add this update's credits and answers to the voters' records; record exclusions.

    Only records that changed are touched: most submits change few (answers are
    counted over an annotator's first votes only, credits come with closing items).
    Missing records are created without a conflict, then each changed one gets one
    increment, in id order (so concurrent submits lock them in one order, and
    neither loses the other's count).
    """
    ids = sorted(set(changes.counts) | set(newly))
    if not ids:
        return
    conn = session.connection()
    now = datetime.now(UTC)
    blank = {"gold_total": 0, "gold_correct": 0, "sensitivity": 0.5, "specificity": 0.5,
             "excluded": False, "updated_at": now}  # fmt: skip
    rows = [{"annotator_id": a, **blank, **changes.of(a)} for a in ids]
    conn.execute(sql.add_to_records, sql.rows.params(rows, RECORD_ROW))
    if newly:
        conn.execute(sql.exclude_annotator, [{"aid": a, "reason": newly[a]} for a in sorted(newly)])
    for obj in list(session.identity_map.values()):
        if isinstance(obj, AnnotatorQuality) and obj.annotator_id in ids:
            session.expire(obj)
