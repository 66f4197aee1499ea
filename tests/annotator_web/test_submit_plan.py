"""A task fetch and a vote submit read their page of items by key, however many items
of the synset are decided (PostgreSQL plans, generic as under load)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import Engine, Select, event, insert, text
from sqlalchemy.dialects import postgresql as pg_dialect

from annotator_web.serving import fetch_sql, submit_sql
from synset_builder.db.models import Annotator, Consensus
from synset_builder.db.session import make_engine
from tests.conftest import DatabaseFactory
from tests.consensus_data import bare_candidates

DECIDED = 20000


def _seed(engine: Engine, n: int) -> tuple[int, int, list[int]]:
    """A synset of ``n`` candidates and an annotator: (synset, annotator, candidate ids)."""
    with engine.begin() as conn:
        sid, ids = bare_candidates(conn, n)
        me = conn.execute(
            insert(Annotator).returning(Annotator.id), {"username": "ann", "role": "annotator"}
        ).scalar_one()
    return sid, me, ids


def _decide(engine: Engine, ids: list[int], decision: str) -> None:
    verdicts = [{"candidate_id": c, "p_yes": 0.5, "decision": decision, "method": "dynamic",
                 "n_votes": 1} for c in ids]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Consensus), verdicts)


def _rows_read(engine: Engine, stmt: Select, args: dict[str, object]) -> list[int]:
    """EXPLAIN ANALYZE of ``stmt``'s generic plan (what a prepared statement runs after
    a few executions): the rows each plan node read per loop. Nothing it writes stays."""
    compiled = stmt.compile(dialect=pg_dialect.psycopg.dialect())
    values = {**compiled.params, **args}
    names: list[str] = []

    def positional(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", positional, str(compiled)).replace("%%", "%")
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_generic_plan")
            cur.execute(f"PREPARE probe AS {prepared}")
            literals = ", ".join(f"'{values[n]}'" for n in names)
            cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE probe({literals})")
            plan = "\n".join(row[0] for row in cur.fetchall())
        raw.rollback()
    read = [int(n) for n in re.findall(r"actual time=\S+ rows=(\d+)", plan)]
    assert read, plan
    return read


def test_answer_state_does_not_scan_every_decided_item(db_factory: DatabaseFactory) -> None:
    """The statistics say "nothing decided" (analyzed before a burst of decisions, as
    autovacuum lags): the old ``NOT EXISTS`` test was then planned as a hashed scan of
    every decided row, 20,000 rows read here for a page of 24 items."""
    engine = make_engine(db_factory.migrated("postgresql"))
    try:
        _, me, ids = _seed(engine, DECIDED + 24)
        _decide(engine, ids[:DECIDED], "pending")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # nothing is decided yet
            conn.execute(text("UPDATE consensus SET decision = 'accepted'"))
        page = "{" + ",".join(map(str, ids[-24:])) + "}"
        read = _rows_read(engine, submit_sql.answer_state(True), {"ids": page, "me": me})
        # Every node reads a few rows per loop: the page's 24 items, each table by key.
        assert max(read) <= 24, read
    finally:
        engine.dispose()


def test_fetch_walks_only_open_items(db_factory: DatabaseFactory) -> None:
    """A synset with 5,000 items, all but 30 decided: the pick of the bulk tier walks
    ``ix_candidate_serve_open`` (unsettled items only), not the 4,970 decided ones
    in serve-key order before it found a page."""
    engine = make_engine(db_factory.migrated("postgresql"))
    try:
        sid, me, ids = _seed(engine, 5000)
        _decide(engine, ids[:-30], "accepted")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        *_, after, _before = fetch_sql.fresh_picks(True)
        args = {"synset_id": sid, "me": me, "now": datetime.now(UTC), "skip": "{}", "start": 0,
                "n": 24}  # fmt: skip
        read = _rows_read(engine, after, args)
        assert max(read) <= 30, read
        assert 24 in read  # it found its page
    finally:
        engine.dispose()


def test_sqlite_fetch_walks_the_open_index(db_factory: DatabaseFactory) -> None:
    """SQLite picks the partial index too (its planner needs the index's own
    ``settled = 0`` in the query, which ``~Candidate.settled`` renders)."""
    engine = make_engine(db_factory.migrated("sqlite"))

    def explain(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        return "EXPLAIN QUERY PLAN " + statement, parameters

    try:
        sid, me, _ = _seed(engine, 100)
        event.listen(engine, "before_cursor_execute", explain, retval=True)
        *_, after, _before = fetch_sql.fresh_picks(False)
        args = {"synset_id": sid, "me": me, "now": datetime.now(UTC), "skip": [], "start": 0,
                "n": 24}  # fmt: skip
        with engine.connect() as conn:
            plans = [row[-1] for row in conn.execute(after, args)]
        walk = [p for p in plans if p.startswith("SEARCH candidate ")]
        assert walk and "ix_candidate_serve_open" in walk[0], plans
    finally:
        engine.dispose()
