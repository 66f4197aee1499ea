"""gold matrix: two more kept gold counters per annotator, so a submit reads no votes

Revision ID: 0021_gold_matrix
Revises: 0020_consensus_refit
Create Date: 2026-12-07 05:00:00

The live model weighs each voter by their full 2 x 2 (truth, vote) matrix on gold
items. Every submit counted it by scanning all the votes of every voter of the
page (``quality.gold_tally``): 100-150 ms a submit at ILSVRC's size, growing with
every vote cast. ``annotator_tally`` (0017) keeps ``gold_answered`` and
``gold_correct``: two equations for four unknowns. Two more counters close it:

* ``gold_truth_yes``: the annotator's answers on gold items whose truth is yes;
* ``gold_said_yes``: the annotator's yes answers on gold items.

Then yy = (truth_yes + said_yes + correct - answered) / 2, yn = truth_yes - yy,
ny = said_yes - yy, nn = correct - yy (synset_builder/consensus/live_sql.py).

The triggers of 0017 that write the gold counters (votes inserted, deleted, among
them those an undo moves to ``vote_undone``, or rewritten; gold answers added,
removed or changed) are replaced by ones that also write the two new columns; the
rest of 0017 is untouched. Existing annotators get their two counts as one ledger
row each. An index on the ledger's annotator lets a submit read its voters' rows
without reading everyone's.
"""

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0021_gold_matrix"
down_revision: str | None = "0020_consensus_refit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HERE = Path(__file__).resolve().parent
NEW = ("gold_truth_yes", "gold_said_yes")
VOTER = ("votes", "timed_votes", "time_ms", "gold_answered", "gold_correct", "decided", "agreed",
         *NEW)  # fmt: skip
TABLES = ("annotator_tally", "annotator_tally_delta")
INDEX = "ix_annotator_tally_delta_annotator"
# The objects of 0017 this revision replaces: PostgreSQL functions (each with its
# trigger of the same name), SQLite triggers.
PG_REPLACED = ("tally_vote_insert", "tally_vote_delete", "tally_vote_update", "tally_gold")
SQLITE_REPLACED = ("tally_voter_insert", "tally_voter_delete", "tally_voter_update",
                   "tally_gold_insert", "tally_gold_update", "tally_gold_delete")  # fmt: skip


def _voter_sums(v: str, sign: str) -> str:
    """The :data:`VOTER` figures over vote rows ``v`` (VOTES_OF: answer, time, gold, decision)."""
    terms = (
        "count(*)",
        f"count({v}.time_ms)",
        f"coalesce(sum({v}.time_ms), 0)",
        f"count({v}.gold)",
        f"count(*) FILTER (WHERE {v}.gold = {v}.answer)",
        f"count({v}.decision)",
        f"coalesce(sum(CASE WHEN {v}.answer = ({v}.decision = 'accepted') THEN 1 ELSE 0 END), 0)",
        f"count(*) FILTER (WHERE {v}.gold)",
        f"count(*) FILTER (WHERE {v}.gold IS NOT NULL AND {v}.answer)",
    )
    return ", ".join(f"{sign} * {t}" for t in terms)


def _votes_of(rows: str) -> str:
    """As 0017: vote rows with their item's gold answer and decided decision, by key."""
    return (
        "(SELECT s.annotator_id, s.time_ms, s.answer, (SELECT g.answer FROM gold g WHERE "
        "g.candidate_id = s.candidate_id) AS gold, (SELECT k.decision FROM consensus k WHERE "
        "k.candidate_id = s.candidate_id AND k.decision IN ('accepted', 'rejected')) AS decision "
        f"FROM {rows} s)"
    )


def _voter_delta(rows: str, sign: str) -> str:
    """The ledger rows (one per annotator) of the votes ``rows``, signed."""
    return (
        f"INSERT INTO annotator_tally_delta (annotator_id, {', '.join(VOTER)}) "
        f"SELECT v.annotator_id, {_voter_sums('v', sign)} FROM {_votes_of(rows)} v "
        "GROUP BY v.annotator_id"
    )


def _gold_sums(g: str) -> str:
    """Per voter of gold rows ``g`` (candidate_id, answer, sign): the four gold counters."""
    terms = (
        "1",
        f"CASE WHEN v.answer = {g}.answer THEN 1 ELSE 0 END",
        f"CASE WHEN {g}.answer THEN 1 ELSE 0 END",
        "CASE WHEN v.answer THEN 1 ELSE 0 END",
    )
    return ", ".join(f"sum({g}.sign * ({t}))" for t in terms)  # fmt: skip


GOLD_COLUMNS = "annotator_id, gold_answered, gold_correct, gold_truth_yes, gold_said_yes"


def _postgresql() -> list[str]:
    def vote_function(name: str, body: str) -> str:
        return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                f"\nBEGIN\n{body}\n    RETURN NULL;\nEND $$")  # fmt: skip

    items = (
        "PERFORM tally_votes(array_agg(candidate_id), array_agg(dn), array_agg(dyes)) "
        "FROM (SELECT candidate_id, {sign}count(*) AS dn, {sign}count(*) FILTER (WHERE "
        "answer) AS dyes FROM {rows} GROUP BY candidate_id ORDER BY candidate_id) a;"
    )
    update_items = (
        "PERFORM tally_votes(array_agg(candidate_id), array_agg(dn), array_agg(dyes)) FROM "
        "(SELECT candidate_id, sum(dn) AS dn, sum(dyes) AS dyes FROM (VALUES (OLD.candidate_id, "
        "-1, -(CASE WHEN OLD.answer THEN 1 ELSE 0 END)), (NEW.candidate_id, 1, CASE WHEN "
        "NEW.answer THEN 1 ELSE 0 END)) d (candidate_id, dn, dyes) GROUP BY candidate_id "
        "ORDER BY candidate_id) a;"
    )
    return [
        vote_function("tally_vote_insert", items.format(sign="", rows="new_rows") + "\n"
                      + _voter_delta("new_rows", "1") + ";"),
        vote_function("tally_vote_delete", items.format(sign="-", rows="old_rows") + "\n"
                      + _voter_delta("old_rows", "-1") + ";"),
        vote_function(
            "tally_vote_update",
            update_items + "\nWITH old_vote AS (SELECT OLD.*), new_vote AS (SELECT NEW.*) "
            + _voter_delta("old_vote", "-1") + " UNION ALL SELECT v.annotator_id, "
            + _voter_sums("v", "1") + f" FROM {_votes_of('new_vote')} v GROUP BY v.annotator_id;",
        ),
        vote_function(
            "tally_gold",
            "PERFORM tally_lock_items(array_remove(ARRAY[OLD.candidate_id, NEW.candidate_id], "
            f"NULL));\nINSERT INTO annotator_tally_delta ({GOLD_COLUMNS}) SELECT v.annotator_id, "
            f"{_gold_sums('g')} FROM (SELECT OLD.candidate_id, OLD.answer, -1 AS sign UNION ALL "
            "SELECT NEW.candidate_id, NEW.answer, 1) g (candidate_id, answer, sign) JOIN vote v "
            "ON v.candidate_id = g.candidate_id GROUP BY v.annotator_id;",
        ),
    ]  # fmt: skip


def _sqlite() -> list[str]:
    def row(r: str) -> str:
        cols = ("annotator_id", "candidate_id", "answer", "time_ms")
        return "(SELECT " + ", ".join(f"{r}.{c} AS {c}" for c in cols) + ")"

    def gold(r: str, sign: str) -> str:
        return (f"INSERT INTO annotator_tally_delta ({GOLD_COLUMNS}) SELECT v.annotator_id, "
                f"{_gold_sums('g')} FROM (SELECT {r}.candidate_id AS candidate_id, {r}.answer "
                f"AS answer, {sign} AS sign) g JOIN vote v ON v.candidate_id = g.candidate_id "
                "GROUP BY v.annotator_id;")  # fmt: skip

    vote_update = "AFTER UPDATE OF annotator_id, candidate_id, answer, time_ms ON vote"
    return [
        f"CREATE TRIGGER tally_voter_insert AFTER INSERT ON vote FOR EACH ROW BEGIN "
        f"{_voter_delta(row('NEW'), '1')}; END",
        f"CREATE TRIGGER tally_voter_delete AFTER DELETE ON vote FOR EACH ROW BEGIN "
        f"{_voter_delta(row('OLD'), '-1')}; END",
        f"CREATE TRIGGER tally_voter_update {vote_update} FOR EACH ROW BEGIN "
        f"{_voter_delta(row('OLD'), '-1')}; {_voter_delta(row('NEW'), '1')}; END",
        f"CREATE TRIGGER tally_gold_insert AFTER INSERT ON gold FOR EACH ROW BEGIN "
        f"{gold('NEW', '1')} END",
        "CREATE TRIGGER tally_gold_update AFTER UPDATE OF candidate_id, answer ON gold FOR EACH "
        f"ROW BEGIN {gold('OLD', '-1')} {gold('NEW', '1')} END",
        f"CREATE TRIGGER tally_gold_delete AFTER DELETE ON gold FOR EACH ROW BEGIN "
        f"{gold('OLD', '-1')} END",
    ]


# Existing annotators: their two new counts, as one ledger row each.
BACKFILL = (
    "INSERT INTO annotator_tally_delta (annotator_id, gold_truth_yes, gold_said_yes) "
    "SELECT v.annotator_id, count(*) FILTER (WHERE g.answer), count(*) FILTER (WHERE v.answer) "
    "FROM vote v JOIN gold g ON g.candidate_id = v.candidate_id GROUP BY v.annotator_id"
)


def _drop(pg: bool, names: Sequence[str]) -> None:
    for name in names:
        if pg:
            table = "gold" if name == "tally_gold" else "vote"
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")


def _migration_0017() -> object:
    """0017's module (its SQL and macros), to put back its objects on downgrade."""
    spec = importlib.util.spec_from_file_location("m0017", HERE / "0017_synset_tally.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recreate_from_0017(pg: bool, names: Sequence[str]) -> None:
    """Run the groups of 0017's SQL that create ``names`` (each group is one object)."""
    m0017 = _migration_0017()
    sql = m0017.expand(m0017._sql(pg), pg)  # type: ignore[attr-defined]
    created = re.compile(rf"CREATE (?:FUNCTION|TRIGGER) (?:{'|'.join(names)})\b")
    for chunk in re.split(r"^-{4,}$", sql, flags=re.M):
        if created.search(chunk):
            op.get_bind().exec_driver_sql(chunk)


def upgrade() -> None:
    pg = op.get_context().dialect.name == "postgresql"
    for table in TABLES:
        for name in NEW:
            # Plain ADD COLUMN, as in 0017 (no batch copy of the table on SQLite).
            op.add_column(table, sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    op.create_index(INDEX, "annotator_tally_delta", ["annotator_id"])
    if not pg:  # PostgreSQL: the functions are replaced in place, under the same triggers
        _drop(pg, SQLITE_REPLACED)
    for statement in _postgresql() if pg else _sqlite():
        op.get_bind().exec_driver_sql(statement)
    op.get_bind().exec_driver_sql(BACKFILL)


def downgrade() -> None:
    pg = op.get_context().dialect.name == "postgresql"
    _drop(pg, PG_REPLACED if pg else SQLITE_REPLACED)
    _recreate_from_0017(pg, PG_REPLACED if pg else SQLITE_REPLACED)
    op.drop_index(INDEX, table_name="annotator_tally_delta")
    for table in TABLES:
        for name in NEW:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
