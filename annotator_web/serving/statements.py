"""The request path's statements: one object per backend, built once in ``create_app``.

Why one object: a fetch and a submit run the same dozen statements on every
request, and a few of them differ by backend (lists as one array parameter on
PostgreSQL, a pick that leases in the same statement, a page's writes in one
statement). Built once, the object is handed down the request path as ``sql``;
where PostgreSQL runs one statement and SQLite several, it has a method, so no
call site asks which backend it is on. The command-line paths that share
``consensus.live`` get its part (:class:`LiveStatements`) from their engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, Self

from sqlalchemy import Connection, Engine, Insert, Select, Update
from sqlalchemy.orm import Session

from annotator_web.serving import fetch_sql, submit_sql
from synset_builder.consensus.live_sql import LiveStatements, statements_for
from synset_builder.db.bulk import RowForm
from synset_builder.db.models import utcnow


class Pick(NamedTuple):
    candidate_id: int
    image_id: int


# What a page's writes give back: candidates recorded, pages done, completion code.
Written = tuple[list[int], int | None, str | None]


@dataclass(frozen=True, eq=False)
class Statements:
    """The statements of a fetch and a submit, and the portable way to run the few
    that PostgreSQL runs as one (:class:`PostgresStatements`): SQLite's."""

    rows: RowForm
    live: LiveStatements
    caller_place: Select
    target_synsets: Select
    synset_probe: Select
    held_items: Select
    gold_picks: Select
    # One per serving tier, the last tier twice (from ``start``, then up to it).
    fresh_picks: tuple[Select, ...]
    upsert_lease: Insert
    answer_state: Select
    insert_votes: Insert
    insert_unsure: Insert
    release_leases: Update
    count_page: Update
    set_completion_code: Update

    @classmethod
    def common(cls, engine: Engine) -> dict[str, object]:
        """The statements common to both forms, for ``engine``'s backend."""
        rows = RowForm.of(engine)
        pg = rows.postgresql
        return {
            "rows": rows, "live": statements_for(engine),
            "caller_place": fetch_sql.caller_place(),
            "target_synsets": fetch_sql.target_synsets(),
            "synset_probe": fetch_sql.synset_probe(pg), "held_items": fetch_sql.held_items(),
            "gold_picks": fetch_sql.gold_picks(pg), "fresh_picks": fetch_sql.fresh_picks(pg),
            "upsert_lease": fetch_sql.upsert_lease(pg),
            "answer_state": submit_sql.answer_state(pg),
            "insert_votes": submit_sql.insert_votes(pg),
            "insert_unsure": submit_sql.insert_unsure(pg),
            "release_leases": submit_sql.release_leases(pg),
            "count_page": submit_sql.count_page(),
            "set_completion_code": submit_sql.set_completion_code(),
        }  # fmt: skip

    @classmethod
    def build(cls, engine: Engine) -> Self:
        return cls(**cls.common(engine))

    @property
    def tiers(self) -> int:
        """How many small serving tiers come before the bulk of a synset."""
        return len(self.fresh_picks) - 2

    def begin_fetch(self, session: Session) -> None:
        """Set up the session of a task fetch (nothing to do here)."""

    def locked(self, stmt: Select) -> Select:
        """``stmt`` locking the rows it reads, where the backend locks rows (not here:
        SQLite's one writer at a time already serialises)."""
        return stmt

    def lease(self, conn: Connection, ids: Sequence[int], me: int, seconds: int) -> set[int]:
        """Lease the candidates ``ids`` to ``me`` for ``seconds`` where nobody else holds
        them; the ids obtained."""
        if not ids:
            return set()
        now = utcnow()
        expires = now + timedelta(seconds=seconds)
        rows = [
            {"candidate_id": cid, "annotator_id": me, "expires_at": expires} for cid in sorted(ids)
        ]
        params = self.rows.params(rows, fetch_sql.LEASE_COLUMNS, now=now, me=me)
        return set(conn.execute(self.upsert_lease, params).scalars())

    def grab(
        self, conn: Connection, pick: Select, params: Mapping[str, object], me: int, seconds: int
    ) -> tuple[list[Pick], list[Pick]]:
        """Run a pick query (one of :attr:`fresh_picks`, :attr:`gold_picks`) and lease
        what it picked: (picks obtained, picks another request leased first)."""
        picks = [Pick(*row) for row in conn.execute(pick, params)]
        got = self.lease(conn, [p.candidate_id for p in picks], me, seconds)
        return [p for p in picks if p.candidate_id in got], [
            p for p in picks if p.candidate_id not in got
        ]

    def write_answers(
        self, conn: Connection, rows: list[dict], released: list[int], me: int, now: datetime
    ) -> Written:
        """Votes, leases released, the page counted: one statement each."""
        recorded: list[int] = []
        if rows:
            params = self.rows.params(rows, submit_sql.VOTE_COLUMNS)
            recorded = list(conn.execute(self.insert_votes, params).scalars())
        if released:
            conn.execute(self.release_leases, {"ids": released, "me": me, "now": now})
        if not recorded:
            return recorded, None, None
        pages, code = conn.execute(self.count_page, {"me": me}).one()
        return recorded, pages, code


@dataclass(frozen=True, eq=False)
class PostgresStatements(Statements):
    """PostgreSQL's forms: a pick leases in the same statement, a page's writes are one
    statement, a fetch runs without a transaction, undo locks the page's rows."""

    # Per pick statement: the same pick leasing what it picks (fetch_sql.leased).
    leasing: Mapping[Select, Select]
    write_all: Select

    @classmethod
    def build(cls, engine: Engine) -> Self:
        picks = [*fetch_sql.fresh_picks(True), fetch_sql.gold_picks(True)]
        leasing = {pick: fetch_sql.leased(pick) for pick in picks}
        common = cls.common(engine)
        return cls(**common, leasing=leasing, write_all=submit_sql.write_answers())

    def begin_fetch(self, session: Session) -> None:
        """Each statement of a fetch stands alone (a lease is taken in one statement,
        :meth:`grab`), so a transaction would only add BEGIN and COMMIT round trips."""
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})

    def locked(self, stmt: Select) -> Select:
        return stmt.with_for_update()

    def grab(
        self, conn: Connection, pick: Select, params: Mapping[str, object], me: int, seconds: int
    ) -> tuple[list[Pick], list[Pick]]:
        """One statement (``fetch_sql.leased``), so a fetch needs no transaction."""
        expires = utcnow() + timedelta(seconds=seconds)
        got: list[Pick] = []
        lost: list[Pick] = []
        for cid, image_id, obtained in conn.execute(
            self.leasing[pick], {**params, "expires": expires}
        ):
            (got if obtained else lost).append(Pick(cid, image_id))
        return got, lost

    def write_answers(
        self, conn: Connection, rows: list[dict], released: list[int], me: int, now: datetime
    ) -> Written:
        """The same in one statement (``submit_sql.write_answers``)."""
        params = self.rows.params(rows, submit_sql.VOTE_COLUMNS, released=released, me=me, now=now)
        result = conn.execute(self.write_all, params).all()
        return [r.candidate_id for r in result], *(result[0][1:] if result else (None, None))


# The form of each backend (synset_builder.db.bulk.ONE_PARAMETER lists the same two).
FORMS: dict[str, type[Statements]] = {"postgresql": PostgresStatements, "sqlite": Statements}


def build_statements(engine: Engine) -> Statements:
    """The request path's statements for ``engine``'s backend (``create_app`` calls it once)."""
    return FORMS[engine.dialect.name].build(engine)
