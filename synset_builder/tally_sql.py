"""The kept counters' names and SQL, importable without SQLAlchemy.

Two readers run these statements: synset_builder/tally.py through a SQLAlchemy
session (pages, commands, PostgreSQL and SQLite), and synset_builder/status_sqlite.py
through the standard library's sqlite3, so that ``synset status`` on the embedded
default does not pay for importing SQLAlchemy. Keeping the SQL here, once, is what
makes both print the same numbers; tests/synset_builder/test_status_fast.py checks it.
Table and column names are ours (never input), hence plain string formatting.
"""

from __future__ import annotations

from dataclasses import dataclass

# The stored counts, in synset_builder.status.COUNTERS order (``queries`` is read live).
COUNTS = ("candidates", "failed", "clean", "rejected", "votes", "accepted",
          "rejected_by_vote", "undecided", "pending")  # fmt: skip
# gold_truth_yes, gold_said_yes: with answered and correct, the (truth, vote) gold
# matrix (migration 0021; consensus/live_sql.py reads it).
VOTER = ("votes", "timed_votes", "time_ms", "gold_answered", "gold_correct", "decided",
         "agreed", "gold_truth_yes", "gold_said_yes")  # fmt: skip
# A reader folds a ledger once it holds this many rows (a few milliseconds to read).
FOLD_AT = 5000
# A submit folds its voters' ledger rows once it read this many of them.
VOTER_FOLD_AT = 64
# pg_try_advisory_xact_lock key: one fold at a time (two could deadlock on tally rows).
FOLD_LOCK = 726_003


@dataclass(frozen=True)
class Tables:
    """A tally table, its ledger, the key they share and the columns they add up."""

    tally: str
    delta: str
    key: str
    columns: tuple[str, ...]

    def sums(self) -> str:
        """Per key: every column's sum over tally and ledger, then the ledger's row count
        (what decides a fold). Sums of nothing are NULL: readers take them as 0."""
        cols = ", ".join(self.columns)
        sums = ", ".join(f"sum({c})" for c in self.columns)
        return (
            f"SELECT id, {sums}, sum(pending_row) FROM ("
            f"SELECT {self.key} AS id, {cols}, 0 AS pending_row FROM {self.tally} "
            f"UNION ALL SELECT {self.key} AS id, {cols}, 1 AS pending_row FROM {self.delta}"
            f") AS kept GROUP BY id"
        )

    def fold_into_tally(self, where: str = "") -> str:
        """Add the ledger's rows (those matching ``where``, a clause) to the tally."""
        names = ", ".join(self.columns)
        sums = ", ".join(f"sum({c})" for c in self.columns)
        add = ", ".join(f"{c} = {self.tally}.{c} + excluded.{c}" for c in self.columns)
        return (
            f"INSERT INTO {self.tally} ({self.key}, {names}) SELECT {self.key}, {sums} "
            f"FROM {{source}} {where} GROUP BY {self.key} "
            f"ON CONFLICT ({self.key}) DO UPDATE SET {add}"
        )

    def fold_sqlite(self) -> tuple[str, str, str]:
        """SQLite's fold: the ledger's last id, then add and delete the rows up to it
        (``:last``). One writer at a time, so both statements see the same rows."""
        where = "WHERE id <= :last"
        return (
            f"SELECT max(id) FROM {self.delta}",
            self.fold_into_tally(where).format(source=self.delta),
            f"DELETE FROM {self.delta} {where}",
        )


SYNSETS = Tables("synset_tally", "synset_tally_delta", "synset_id",
                 (*COUNTS, "agreed_items", "agreement_sum"))  # fmt: skip
ANNOTATORS = Tables("annotator_tally", "annotator_tally_delta", "annotator_id", VOTER)
