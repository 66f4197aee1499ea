"""Statements over a list of ids or rows whose SQL text does not depend on the list.

Why: SQLAlchemy renders ``IN (...)`` and a multi-row ``VALUES`` with one placeholder
per element, so the SQL text changes with the list's length. Every call then
renders the statement again in Python, psycopg parses it again (it caches only
texts under 4 KB: a page of 24 consensus rows is longer), and PostgreSQL plans
it again, since a prepared statement is only reused for the same text. On
PostgreSQL a list travels instead as one text parameter: an id list as an array
literal (``col = ANY(CAST(:ids AS INTEGER[]))``), rows as one JSON document
(``INSERT ... SELECT * FROM json_to_recordset(:rows)``). SQLite has no arrays;
there the usual forms stay, and the caller passes the same values either way.

Why text and not psycopg's list adaptation: psycopg adapts a Python list element
by element in Python, after sniffing the element type. A page of consensus rows as
column arrays cost over an order of magnitude more to adapt than the same rows as
one orjson document, a visible share of the web app's CPU per submit
(bench/web_load.py; figures in docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    select,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import ARRAY, JSON
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.types import TypeDecorator

# Both have on_conflict_do_update / on_conflict_do_nothing and ``excluded``.
DialectInsert = pg_dialect.Insert | sqlite_dialect.Insert
# The parameter that carries the rows of an insert_rows statement on PostgreSQL.
ROWS = "rows"
NUMPY = orjson.OPT_SERIALIZE_NUMPY


class IdArray(TypeDecorator[Sequence[int]]):
    """A list of integers sent as the text of a PostgreSQL array literal, cast on the server."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Sequence[int] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return "{" + ",".join(map(str, map(int, value))) + "}"

    def bind_expression(self, bindvalue: ColumnElement) -> ColumnElement:
        return cast(bindvalue, ARRAY(Integer))


class JsonRows(TypeDecorator[Sequence[Mapping[str, object]]]):
    """Rows (dicts) sent as one JSON document, encoded by orjson (datetimes as RFC 3339)."""

    impl = Text
    cache_ok = True

    def process_bind_param(
        self, value: Sequence[Mapping[str, object]] | None, dialect: Dialect
    ) -> str | None:
        # numpy scalars too (a float64 from a model), as psycopg would adapt them.
        return None if value is None else orjson.dumps(value, option=NUMPY).decode()

    def bind_expression(self, bindvalue: ColumnElement) -> ColumnElement:
        return cast(bindvalue, JSON)


def in_list(column: ColumnElement, name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column IN (:name...)``; the parameter ``name`` is a list of integers."""
    if postgresql:
        return column == any_(bindparam(name, type_=IdArray()))
    return column.in_(bindparam(name, expanding=True))


def not_in_list(column: ColumnElement, name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column NOT IN (:name...)``; true for every row when the list is empty."""
    if postgresql:
        return ~in_list(column, name, postgresql)
    return column.not_in(bindparam(name, expanding=True))


def dialect_insert(table: Table, postgresql: bool) -> DialectInsert:
    """An ``INSERT`` of the backend's dialect, which has ``ON CONFLICT`` clauses."""
    return pg_dialect.insert(table) if postgresql else sqlite_dialect.insert(table)


def insert_rows(table: Table, columns: Sequence[str], postgresql: bool) -> DialectInsert:
    """A dialect ``INSERT`` of ``columns`` for :func:`rows_params` (add ``ON CONFLICT`` to it).

    PostgreSQL reads the rows from one JSON parameter through ``json_to_recordset``,
    each column typed as the table's; SQLite gets a plain insert that SQLAlchemy
    sends as one multi-row ``VALUES`` (insertmanyvalues).
    """
    if not postgresql:
        return dialect_insert(table, postgresql)
    typed = [column(c, table.c[c].type) for c in columns]
    source = func.json_to_recordset(bindparam(ROWS, type_=JsonRows()))
    derived = source.table_valued(*typed).render_derived(with_types=True)
    return dialect_insert(table, postgresql).from_select(list(columns), select(*derived.c))


def rows_params(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    postgresql: bool,
    **shared: object,
) -> dict[str, object] | list[dict[str, object]]:
    """The parameters of an :func:`insert_rows` statement: the rows as one parameter
    on PostgreSQL, one dict per row on SQLite; ``shared`` are its other parameters."""
    if postgresql:
        return {ROWS: [{c: r[c] for c in columns} for r in rows], **shared}
    return [{**r, **shared} for r in rows]


# The backends whose lists travel as one text parameter (see the module docstring).
ONE_PARAMETER = {"postgresql": True, "sqlite": False}


@dataclass(frozen=True)
class RowForm:
    """The list and row forms of one backend, picked once from its engine.

    Why an object: statements built once per backend and the code that runs them
    then share one answer to "which backend", instead of every call site asking
    the session again and passing a flag down.
    """

    postgresql: bool

    @classmethod
    def of(cls, bind: Engine | Connection) -> RowForm:
        return cls(ONE_PARAMETER[bind.dialect.name])

    def params(
        self, rows: Sequence[Mapping[str, object]], columns: Sequence[str], **shared: object
    ) -> dict[str, object] | list[dict[str, object]]:
        return rows_params(rows, columns, self.postgresql, **shared)
