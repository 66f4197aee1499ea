"""``synset status`` on the embedded SQLite default, without SQLAlchemy.

Why a second path: importing SQLAlchemy and its ORM costs a short command several
times Python's own start-up, more than ``status`` then spends reading one row per
synset, and curators and scripts run ``status`` in loops. On a plain SQLite file
(the default ``sqlite:///./synset.db``) this module reads the same kept counters
with the standard library's sqlite3: the tally SQL is synset_builder/tally_sql.py's,
shared with the ORM readers, and the rest mirrors synset_builder/status.py's
``funnel``. It also mirrors what opening a session does first (the folder made,
the same pragmas, the same one-line errors and exit codes for an unreachable,
empty or half-migrated database).

Everything else keeps the ORM path (synset_builder/status.py): PostgreSQL, SQLite
URLs with a query string or characters a URL escapes (their file name is
SQLAlchemy's to decode), ``--recount``. tests/synset_builder/test_status_fast.py
holds both paths to the same JSON and this one to loading no SQLAlchemy.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from synset_builder import tally_sql
from synset_builder.errors import DatabaseUnavailable
from synset_builder.review import figures as review_figures

# Every counter, in synset_builder.status.COUNTERS order.
COUNTERS = ("queries", *tally_sql.COUNTS)

# sqlite:/// and a file name SQLAlchemy's make_url takes and prints back unchanged.
_PLAIN_FILE = re.compile(r"sqlite:///([A-Za-z0-9_./ +,=-]+)", re.ASCII)

# What synset_builder/db/session.py sets on every SQLite connection.
_PRAGMAS = ("PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000")

_SYNSETS = (
    "SELECT id, wnid, name, target, goal, hard_share FROM synset {where} ORDER BY target DESC, wnid"
)
_ACTIVE_QUERIES = "SELECT synset_id, count(*) FROM query WHERE active GROUP BY synset_id"


def plain_file(database_url: str) -> str | None:
    """The file a plain ``sqlite:///FILE`` URL names; None for any other URL."""
    match = _PLAIN_FILE.fullmatch(database_url)
    if match is None or match.group(1) == ":memory:":
        return None
    return match.group(1)


def funnel(database_url: str, *, targets_only: bool = False) -> list[dict[str, object]]:
    """What ``status.funnel(...)`` returns, as ``SynsetStatus.as_json()`` dicts.

    ``database_url`` must be one :func:`plain_file` accepts.
    """
    name = plain_file(database_url)
    if name is None:
        raise ValueError(f"not a plain SQLite file URL: {database_url!r}")
    conn = _connect(database_url, name)
    try:
        _require_schema(conn, database_url)
        try:
            rows = _read(conn, targets_only)
            conn.commit()  # a fold (see _tallies) is kept, as the ORM session commits
        except sqlite3.Error as exc:
            # The ORM path's DBAPIError, as synset_builder/cli/__init__.py words it.
            raise DatabaseUnavailable(f"database error: {_reason(exc)}") from exc
    finally:
        conn.close()
    return rows


def _reason(exc: sqlite3.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _connect(database_url: str, name: str) -> sqlite3.Connection:
    """Open as db/session.make_engine and check_connection do, with their messages."""
    Path(name).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(os.path.abspath(name))
        try:
            for pragma in _PRAGMAS:
                conn.execute(pragma)
            conn.execute("SELECT 1")
        except BaseException:
            conn.close()
            raise
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(
            f"Cannot reach the database {database_url}: {_reason(exc)}"
        ) from exc
    return conn


def _require_schema(conn: sqlite3.Connection, database_url: str) -> None:
    """cli/common.engine_for's check: ``synset init`` has left a revision."""
    try:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        revision = has_table and conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(f"database error: {_reason(exc)}") from exc
    if not revision:
        raise DatabaseUnavailable(
            f"The database {database_url} has no schema yet; run 'synset init' first."
        )


def _tallies(conn: sqlite3.Connection) -> dict[int, list[int]]:
    """Per synset, the kept counts (tally plus ledger), folding a long ledger as
    synset_builder/tally.py's readers do."""
    ledger = tally_sql.SYNSETS
    out: dict[int, list[int]] = {}
    pending = 0
    n = len(tally_sql.COUNTS)
    for key, *values, waiting in conn.execute(ledger.sums()):
        out[key] = [int(v or 0) for v in values[:n]]
        pending += int(waiting or 0)
    if pending >= tally_sql.FOLD_AT:
        last_id, add, delete = ledger.fold_sqlite()
        last = conn.execute(last_id).fetchone()[0]
        if last is not None:
            conn.execute(add, {"last": last})
            conn.execute(delete, {"last": last})
    return out


def _read(conn: sqlite3.Connection, targets_only: bool) -> list[dict[str, object]]:
    kept = _tallies(conn)
    queries = dict(conn.execute(_ACTIVE_QUERIES).fetchall())
    zero = [0] * len(tally_sql.COUNTS)
    # Curators' judgements over the crowd's decisions, and the audit (as status.funnel).
    moved = review_figures.moves(conn.execute(review_figures.MOVES_SQL))
    audits = review_figures.figures(conn.execute(review_figures.AUDIT_SQL))
    rows = conn.execute(_SYNSETS.format(where="WHERE target" if targets_only else ""))
    out: list[dict[str, object]] = []
    for sid, wnid, name, target, goal, hard in rows:
        counts = dict(zip(COUNTERS, [queries.get(sid, 0), *kept.get(sid, zero)], strict=True))
        for counter, n in moved.get(sid, {}).items():
            counts[counter] += n
        audit = audits.get(sid)
        out.append(
            {
                "wnid": wnid,
                "name": name,
                "target": bool(target),
                "goal": goal,
                "counts": counts,
                "audit": audit.as_json() if audit is not None else None,
                "hard_share": float(hard) if hard else None,
            }
        )
    return out
