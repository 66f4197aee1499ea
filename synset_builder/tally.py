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

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from synset_builder.db.models import AnnotatorTally, SynsetTally
from synset_builder.db.session import on_postgresql

# The names and SQL live in tally_sql, shared with the SQLAlchemy-free status.
from synset_builder.tally_sql import (
    ANNOTATORS,
    COUNTS,
    FOLD_AT,
    FOLD_LOCK,
    SYNSETS,
    VOTER,
    Tables,
)
from synset_builder.tally_sql import VOTER_FOLD_AT as VOTER_FOLD_AT  # live.py reads it here


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


# Each ledger's tally table, for replace()'s bulk insert.
_TALLY_TABLES = {SYNSETS: SynsetTally.__table__, ANNOTATORS: AnnotatorTally.__table__}


def _sums(session: Session, ledger: Tables) -> dict[int, list[float]]:
    """Per key, the column sums of tally and ledger; folds a long ledger afterwards."""
    out: dict[int, list[float]] = {}
    pending = 0
    for key, *values, waiting in session.execute(text(ledger.sums())):
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


def fold(session: Session, ledger: Tables = SYNSETS) -> bool:
    """Move a ledger into its tally; False if another fold was under way (PostgreSQL)."""
    if on_postgresql(session):
        if not session.scalar(text(f"SELECT pg_try_advisory_xact_lock({FOLD_LOCK})")):
            return False
        # One statement, one snapshot: a ledger row committed meanwhile is neither
        # summed nor deleted; it waits for the next fold.
        add = ledger.fold_into_tally().format(source="moved")
        session.execute(text(f"WITH moved AS (DELETE FROM {ledger.delta} RETURNING *) {add}"))
        return True
    last_id, add, delete = ledger.fold_sqlite()
    last = session.scalar(text(last_id))
    if last is not None:
        session.execute(text(add), {"last": last})
        session.execute(text(delete), {"last": last})
    return True


def fold_voters(session: Session, annotator_ids: list[int]) -> bool:
    """Move these annotators' ledger rows into their tally rows (a submit's voters,
    whose gold matrix it reads: consensus/live_sql.kept_gold); False if another fold
    was under way (PostgreSQL: it only tries, a submit never waits for a fold)."""
    if not annotator_ids:
        return True
    ids = bindparam("ids", expanding=True)
    mine = f"WHERE {ANNOTATORS.key} IN :ids"
    if on_postgresql(session):
        if not session.scalar(text(f"SELECT pg_try_advisory_xact_lock({FOLD_LOCK})")):
            return False
        add = ANNOTATORS.fold_into_tally().format(source="moved")
        stmt = f"WITH moved AS (DELETE FROM {ANNOTATORS.delta} {mine} RETURNING *) {add}"
        session.execute(text(stmt).bindparams(ids), {"ids": annotator_ids})
        return True
    add = ANNOTATORS.fold_into_tally(mine).format(source=ANNOTATORS.delta)
    for stmt in (add, f"DELETE FROM {ANNOTATORS.delta} {mine}"):
        session.execute(text(stmt).bindparams(ids), {"ids": annotator_ids})
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
        session.execute(text(f"DELETE FROM {ledger.delta}"))
        session.execute(text(f"DELETE FROM {ledger.tally}"))
        kept = [r for r in rows if any(r[c] for c in ledger.columns)]
        if kept:
            session.execute(_TALLY_TABLES[ledger].insert(), kept)
