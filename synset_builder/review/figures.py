"""Audit figures and expert moves, importable without SQLAlchemy.

``synset status`` has two readers: synset_builder/status.py (a SQLAlchemy session)
and synset_builder/status_sqlite.py (the standard library's sqlite3, for start-up
time). Both must show the decisions in force and the audit, so the SQL and the
arithmetic live here, once, in plain text and plain Python.

Wilson's interval (z = 1.96) rather than the normal one: audits are small (50 a
synset) and precision sits near 1, where the normal interval pokes past 1 and
claims certainty from a sample with no mistake in it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from synset_builder.decision import Decision

Z95 = 1.96

# A decision word -> the ``synset status`` counter that counts it.
COUNTER_OF = {Decision.accepted: "accepted", Decision.rejected: "rejected_by_vote",
              Decision.undecided: "undecided", Decision.pending: "pending"}  # fmt: skip

# Per synset: the crowd's decision (NULL: none) and the expert's label, for every item
# whose newest expert decision is a judgement (not a hand-back), counted.
MOVES_SQL = (
    "SELECT c.synset_id, k.decision, e.label, count(*) FROM expert_decision e "
    "JOIN candidate c ON c.id = e.candidate_id "
    "LEFT JOIN consensus k ON k.candidate_id = e.candidate_id "
    "WHERE e.id IN (SELECT max(id) FROM expert_decision GROUP BY candidate_id) "
    "AND e.label IS NOT NULL GROUP BY c.synset_id, k.decision, e.label"
)


def _count(where: str) -> str:
    return f"sum(CASE WHEN {where} THEN 1 ELSE 0 END)"


# Per audited synset: accepted items sampled, judged, confirmed; rejected items
# sampled, judged, judged wrong (the curator said yes).
AUDIT_SQL = (
    "SELECT synset_id, "
    + ", ".join(
        _count(w)
        for w in (
            "kind = 'accepted'",
            "kind = 'accepted' AND judged_label IS NOT NULL",
            "kind = 'accepted' AND judged_label = TRUE",
            "kind = 'rejected'",
            "kind = 'rejected' AND judged_label IS NOT NULL",
            "kind = 'rejected' AND judged_label = TRUE",
        )
    )
    + " FROM audit_sample GROUP BY synset_id"
)


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion; ``n`` may be an effective
    (fractional) count. (0, 1) when nothing was judged."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Figure:
    """One synset's audit over every round: the ``audit`` object of ``status --json``."""

    sampled: int
    judged: int
    confirmed: int
    rejected_sampled: int = 0
    rejected_judged: int = 0
    rejected_wrong: int = 0

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.judged if self.judged else None

    def as_json(self) -> dict[str, object]:
        lo, hi = wilson(self.confirmed, self.judged) if self.judged else (None, None)
        return {"sampled": self.sampled, "judged": self.judged, "confirmed": self.confirmed,
                "precision": self.precision, "low": lo, "high": hi}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Figure:
        return cls(int(data["sampled"]), int(data["judged"]), int(data["confirmed"]))  # type: ignore[call-overload]


def figures(rows: Iterable[tuple]) -> dict[int, Figure]:
    """:data:`AUDIT_SQL`'s rows as a Figure per synset id."""
    return {sid: Figure(*(int(v or 0) for v in rest)) for sid, *rest in rows}


def moves(rows: Iterable[tuple]) -> dict[int, dict[str, int]]:
    """:data:`MOVES_SQL`'s rows as, per synset, what to add to each decision counter:
    a judged item leaves its crowd counter and joins the expert's."""
    out: dict[int, dict[str, int]] = {}
    for sid, crowd, label, n in rows:
        delta = out.setdefault(sid, dict.fromkeys(COUNTER_OF.values(), 0))
        if crowd in COUNTER_OF:
            delta[COUNTER_OF[crowd]] -= int(n)
        delta["accepted" if label else "rejected_by_vote"] += int(n)
    return out


@dataclass(frozen=True)
class Pooled:
    """The audited precision over synsets, each weighted by its accepted count."""

    precision: float | None
    low: float | None
    high: float | None
    synsets: int
    judged: int

    def as_json(self) -> dict[str, object]:
        return {"precision": self.precision, "low": self.low, "high": self.high,
                "synsets": self.synsets, "judged": self.judged}  # fmt: skip

    def line(self) -> str:
        """The last line of the ``synset status`` table."""
        if self.precision is None:
            return "Audited precision: no audit judged yet ('synset audit start WNID')."
        return (
            f"Audited precision, pooled over {self.synsets} synset(s) by accepted count: "
            f"{self.precision:.3f} (95% interval {self.low:.3f}-{self.high:.3f}, "
            f"{self.judged} judged)"
        )


def pooled(per_synset: Mapping[int, Figure], accepted: Mapping[int, int]) -> Pooled:
    """Each audited synset's precision weighted by its accepted count.

    The interval is Wilson's with Kish's effective sample size (the weighted
    estimate's variance turned back into a count): many small audits are not read
    as one large one. With no mistake anywhere the variance is 0 and the count is
    every judged item.
    """
    parts = [(accepted.get(sid, 0), f) for sid, f in per_synset.items() if f.judged]
    parts = [(w, f) for w, f in parts if w > 0]
    if not parts:
        return Pooled(None, None, None, 0, 0)
    total = sum(w for w, _ in parts)
    judged = sum(f.judged for _, f in parts)
    shares = [(w / total, f.confirmed / f.judged, f.judged) for w, f in parts]
    p = sum(w * q for w, q, _ in shares)
    var = sum(w * w * q * (1 - q) / n for w, q, n in shares)
    n_eff = p * (1 - p) / var if var > 0 else float(judged)
    lo, hi = wilson(p * n_eff, n_eff)
    return Pooled(p, lo, hi, len(parts), judged)


def pooled_from_rows(rows: Iterable[Mapping[str, object]]) -> Pooled:
    """:func:`pooled` over ``synset status --json`` rows (``counts`` and ``audit``)."""
    per: dict[int, Figure] = {}
    accepted: dict[int, int] = {}
    for k, row in enumerate(rows):
        found = row.get("audit")
        if isinstance(found, Mapping):
            per[k] = Figure.from_json(found)
            accepted[k] = int(row["counts"]["accepted"])  # type: ignore[index]
    return pooled(per, accepted)
