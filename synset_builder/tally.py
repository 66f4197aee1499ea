"""Counters for curator pages that cost the same at a million candidates as at a thousand.

Counting the funnel with a GROUP BY over every candidate, vote and decision made
each curator page slower as a project grew, until at ILSVRC's size it never
answered. Triggers (migration 0017) now append every change of a synset's counts
to a ledger, ``synset_tally_delta``, and of an annotator's figures to
``annotator_tally_delta``; the numbers are the ``*_tally`` row plus the ledger
rows, so a read costs one row per synset (or annotator) plus the ledger.

Writers only append (no shared counter row to wait on: two submits on one
synset never queue behind each other). Readers fold a ledger into its tally
when it has grown past :data:`FOLD_AT` rows, in the reader's transaction, so
the ledgers stay short without a background job. Folding moves numbers, it
loses none: the exact recount (``synset status --recount``, status.recount) is
the check and the repair.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal, select, text, union_all
from sqlalchemy.orm import Session

from synset_builder.db.models import (
    AnnotatorTally,
    AnnotatorTallyDelta,
    Base,
    SynsetTally,
    SynsetTallyDelta,
)
from synset_builder.db.session import on_postgresql

# The stored counts, in synset_builder.status.COUNTERS order (``queries`` is read live).
COUNTS = ("candidates", "failed", "clean", "rejected", "votes", "accepted",
          "rejected_by_vote", "undecided", "pending")  # fmt: skip
VOTER = ("votes", "timed_votes", "time_ms", "gold_answered", "gold_correct", "decided",
         "agreed")  # fmt: skip
# A reader folds a ledger once it holds this many rows (a few milliseconds to read).
FOLD_AT = 5000
# pg_try_advisory_xact_lock key: one fold at a time (two could deadlock on tally rows).
FOLD_LOCK = 726_003


@dataclass(frozen=True)
class Tally:
    """One synset's counts; ``agreement``: mean share of voters siding with the
    majority, over items with two votes or more (None: no such item)."""

    counts: dict[str, int]
    agreed_items: int = 0
    agreement_sum: float = 0.0

    @property
    def agreement(self) -> float | None:
        return self.agreement_sum / self.agreed_items if self.agreed_items else None

    def row(self) -> dict[str, float]:
        return {**self.counts, "agreed_items": self.agreed_items,
                "agreement_sum": self.agreement_sum}  # fmt: skip


EMPTY = Tally(dict.fromkeys(COUNTS, 0))


@dataclass(frozen=True)
class Ledger:
    """A tally table, its ledger, the key they share and the columns they add up."""

    tally: type[Base]
    delta: type[Base]
    key: str
    columns: tuple[str, ...]


SYNSETS = Ledger(SynsetTally, SynsetTallyDelta, "synset_id",
                 (*COUNTS, "agreed_items", "agreement_sum"))  # fmt: skip
ANNOTATORS = Ledger(AnnotatorTally, AnnotatorTallyDelta, "annotator_id", VOTER)


def _sums(session: Session, ledger: Ledger) -> dict[int, list[float]]:
    """Per key, the column sums of tally and ledger; folds a long ledger afterwards."""
    parts = [
        select(
            getattr(table, ledger.key).label("key"),
            *(getattr(table, name) for name in ledger.columns),
            literal(pending).label("pending_row"),
        )
        for table, pending in ((ledger.tally, 0), (ledger.delta, 1))
    ]
    rows = union_all(*parts).subquery()
    sums = (func.sum(rows.c[name]) for name in ledger.columns)
    stmt = select(rows.c.key, *sums, func.sum(rows.c.pending_row)).group_by(rows.c.key)
    out: dict[int, list[float]] = {}
    pending = 0
    for key, *values, waiting in session.execute(stmt):
        out[key] = [v or 0 for v in values]
        pending += int(waiting or 0)
    if pending >= FOLD_AT:
        fold(session, ledger)
    return out


def read(session: Session) -> dict[int, Tally]:
    """Every synset's counts (synsets with none are absent: use :data:`EMPTY`)."""
    n = len(COUNTS)
    return {
        sid: Tally(dict(zip(COUNTS, map(int, v[:n]), strict=True)), int(v[n]), float(v[n + 1]))
        for sid, v in _sums(session, SYNSETS).items()
    }


def read_annotators(session: Session) -> dict[int, dict[str, int]]:
    """Every annotator's figures by :data:`VOTER` name (absent: none yet)."""
    return {
        aid: dict(zip(VOTER, map(int, v), strict=True))
        for aid, v in _sums(session, ANNOTATORS).items()
    }


def fold(session: Session, ledger: Ledger = SYNSETS) -> bool:
    """Move a ledger into its tally; False if another fold was under way (PostgreSQL)."""
    tally, delta = ledger.tally.__tablename__, ledger.delta.__tablename__
    names = ", ".join(ledger.columns)
    sums = ", ".join(f"sum({c})" for c in ledger.columns)
    add = ", ".join(f"{c} = {tally}.{c} + excluded.{c}" for c in ledger.columns)
    upsert = f"ON CONFLICT ({ledger.key}) DO UPDATE SET {add}"
    if on_postgresql(session):
        if not session.scalar(text(f"SELECT pg_try_advisory_xact_lock({FOLD_LOCK})")):
            return False
        # One statement, one snapshot: a ledger row committed meanwhile is neither
        # summed nor deleted; it waits for the next fold.
        session.execute(
            text(
                f"WITH moved AS (DELETE FROM {delta} RETURNING *) "
                f"INSERT INTO {tally} ({ledger.key}, {names}) "
                f"SELECT {ledger.key}, {sums} FROM moved GROUP BY {ledger.key} {upsert}"
            )
        )
        return True
    # SQLite: one writer at a time, so the two statements see the same rows.
    last = session.scalar(select(func.max(ledger.delta.id)))
    if last is not None:
        session.execute(
            text(
                f"INSERT INTO {tally} ({ledger.key}, {names}) SELECT {ledger.key}, {sums} "
                f"FROM {delta} WHERE id <= :last GROUP BY {ledger.key} {upsert}"
            ),
            {"last": last},
        )
        session.execute(text(f"DELETE FROM {delta} WHERE id <= :last"), {"last": last})
    return True


def replace(
    session: Session, synsets: dict[int, Tally], annotators: dict[int, dict[str, int]]
) -> None:
    """Make these the numbers: empty both ledgers and rewrite both tallies.

    The caller holds the writers off (status.recount locks the ledgers), so no
    change lands between its recount and this.
    """
    for ledger, rows in (
        (SYNSETS, [{"synset_id": sid, **t.row()} for sid, t in synsets.items()]),
        (ANNOTATORS, [{"annotator_id": aid, **f} for aid, f in annotators.items()]),
    ):
        session.execute(text(f"DELETE FROM {ledger.delta.__tablename__}"))
        session.execute(text(f"DELETE FROM {ledger.tally.__tablename__}"))
        kept = [r for r in rows if any(r[c] for c in ledger.columns)]
        if kept:
            session.execute(ledger.tally.__table__.insert(), kept)
