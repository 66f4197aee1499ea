"""Statements over a list of ids or rows whose SQL text does not depend on the list.

Why: SQLAlchemy renders ``IN (...)`` and a multi-row ``VALUES`` with one placeholder
per element, so the SQL text changes with the list's length. Every call then
renders the statement again in Python, psycopg parses it again (it caches only
texts under 4 KB: a page of 24 consensus rows is longer), and PostgreSQL plans
it again, since a prepared statement is only reused for the same text. On
PostgreSQL a list travels instead as one array parameter: ``col = ANY(:ids)``,
``INSERT ... SELECT * FROM unnest(:col1, :col2, ...)``. SQLite has no arrays;
there the usual forms stay, and the caller passes the same values either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import ColumnElement, Table, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import ARRAY

# Both have on_conflict_do_update / on_conflict_do_nothing and ``excluded``.
DialectInsert = pg_dialect.Insert | sqlite_dialect.Insert


def in_list(column: ColumnElement, name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column IN (:name...)``; the parameter ``name`` is a list of values."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def not_in_list(column: ColumnElement, name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column NOT IN (:name...)``; true for every row when the list is empty."""
    if postgresql:
        return ~in_list(column, name, postgresql)
    return column.not_in(bindparam(name, expanding=True))


def insert_rows(table: Table, columns: Sequence[str], postgresql: bool) -> DialectInsert:
    """A dialect ``INSERT`` of ``columns`` for :func:`rows_params` (add ``ON CONFLICT`` to it).

    PostgreSQL reads one array per column through ``unnest``; SQLite gets a plain
    insert that SQLAlchemy sends as one multi-row ``VALUES`` (insertmanyvalues).
    """
    if not postgresql:
        return sqlite_dialect.insert(table)
    arrays = [bindparam(_array(c), type_=ARRAY(table.c[c].type)) for c in columns]
    source = func.unnest(*arrays).table_valued(*columns).render_derived()
    return pg_dialect.insert(table).from_select(list(columns), select(*source.c))


def rows_params(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    postgresql: bool,
    **shared: object,
) -> dict[str, object] | list[dict[str, object]]:
    """The parameters of an :func:`insert_rows` statement: one list per column on
    PostgreSQL, one dict per row on SQLite; ``shared`` are its other parameters."""
    if postgresql:
        return {**{_array(c): [r[c] for r in rows] for c in columns}, **shared}
    return [{**r, **shared} for r in rows]


def _array(column: str) -> str:
    """The parameter name of a column's array: not the column's own name, which an
    ``UPDATE`` in the same statement would take as a value to set."""
    return f"{column}_array"
