"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

The engine is built from settings at the edge and passed down; SQLite gets WAL,
foreign keys and a busy timeout so the web app and a stage can share one file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from synset_builder.errors import DatabaseUnavailable

T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI objects are untyped
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(database_url: str, **kwargs: object) -> Engine:
    """Create an engine; for SQLite, make sure the folder of the file exists."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)  # type: ignore[arg-type]
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.get_backend_name() == "postgresql":
        kwargs.setdefault("connect_args", {"connect_timeout": 5})
    engine = create_engine(url, **kwargs)  # type: ignore[arg-type]
    if not kwargs.get("pool_pre_ping"):
        _ping_after_idle(engine)
    return engine


def plan_for_every_row(session: Session) -> None:
    """Plan the transaction's next cursor for reading every row it yields (PostgreSQL).

    For a statement read to its end through a server-side cursor over most of a
    large table. PostgreSQL plans a cursor for its first 10% of rows by default
    (``cursor_tuple_fraction``): at ILSVRC scale the export's stream of 800,000
    accepted images got a fast-start plan of about a second per thousand rows (a
    quarter of an hour) where the plan for every row reads them in seconds. Not
    for every cursor: ``synset consensus``'s workers read 20 synsets at a time,
    where the fast-start plan is the quicker one. JIT off too: the cost estimate of
    such a statement turns it on, and it then spends longer compiling than the scan
    takes. ``SET LOCAL``: both end with the transaction.
    """
    if on_postgresql(session):
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL cursor_tuple_fraction = 1"))


# A pooled connection idle this long is checked before use (see _ping_after_idle).
IDLE_PING_SECONDS = 1.0


def _ping_after_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle: a server restart or an
    idle timeout leaves dead connections in the pool, and this replaces them.

    Why not ``pool_pre_ping``: it pings on every checkout, one extra round trip per
    web request (two per annotated page). Under load connections come back to work
    within milliseconds, and a server lost mid-traffic is caught by SQLAlchemy's
    disconnect handling, which discards every pooled connection at the first error.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn, record) -> None:  # noqa: ANN001 - pool objects are untyped
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (a fresh one).
            raise DisconnectionError(str(exc)) from exc


def on_postgresql(session: Session) -> bool:
    """Whether the session's database is PostgreSQL (upserts and row locks differ by dialect)."""
    return session.get_bind().dialect.name == "postgresql"


# PostgreSQL's "run the transaction again" errors: deadlock_detected, serialization_failure.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
TRANSACTION_ATTEMPTS = 3


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error wrapped by SQLAlchemy (None on SQLite and others)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def committed(session: Session, work: Callable[[], T], attempts: int = TRANSACTION_ATTEMPTS) -> T:
    """Run ``work`` in the session's transaction and commit it; when PostgreSQL aborts
    the transaction to break a deadlock (or a serialization conflict), roll back and
    run ``work`` again from the start, up to ``attempts`` times in all.

    Why: PostgreSQL resolves a deadlock by aborting one transaction of the cycle and
    asks applications to retry it. The request path writes its rows in one order,
    but the counters' triggers and a background refit writing a synset lock rows too,
    and an annotator's page should not be lost (a 503) to the server's choice of
    victim. ``work`` must read what it needs again (it runs in a fresh transaction)
    and be safe to repeat, which a fetch, a submit and an undo are.
    """
    for attempt in range(attempts):
        try:
            result = work()
            session.commit()
            return result
        except DBAPIError as exc:
            if sqlstate(exc) not in RETRY_SQLSTATES or attempt == attempts - 1:
                raise
            session.rollback()
    raise AssertionError("unreachable: the last attempt returns or raises")


def describe(database_url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(database_url).render_as_string(hide_password=True)


def check_connection(engine: Engine) -> None:
    """Fail with one sentence when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(
            f"Cannot reach the database {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(bind: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    ``bind`` is an engine (CLI, stages) or a configured sessionmaker (the web app).
    """
    if isinstance(bind, sessionmaker):
        session = bind()
    else:
        session = Session(bind=bind, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
