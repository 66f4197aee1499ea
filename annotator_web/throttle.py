"""Attempt limits kept in the database: failed logins, wrong study keys, crowd joins.

Rows (``login_failure``), not process memory, so a limit holds across the workers
of ``synset serve`` and across restarts. An attempt is written *before* it is
evaluated, counted in the same transaction, under a lock on its keys: forty
parallel wrong passwords for one account each see the others' rows, so at most
the limit of them ever reach the password check (counting first and writing
after let twenty of forty through a limit of five). A login that turns out right
gives its row back, so successful logins never count.

Locks: on PostgreSQL a transaction-scoped advisory lock per key (account,
address), taken in sorted order so two attempts never wait on each other in a
cycle. On SQLite the attempt's INSERT takes the database's one write lock, which
another attempt waits for (busy timeout) before its own INSERT; the count after it
sees every attempt committed before.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from synset_builder.db.models import LoginFailure, utcnow
from synset_builder.db.session import on_postgresql
from synset_builder.errors import SynsetError

# How many new crowd accounts one address may open per JOIN_WINDOW (SYNSET_CROWD_JOIN_LIMIT).
JOIN_WINDOW = 3600


class TooManyAttempts(SynsetError):
    """Too many attempts for this account or address within the window."""


def lock_keys(session: Session, *keys: str) -> None:
    """Serialise the transactions that name the same key, until they end.

    PostgreSQL only (advisory locks). On SQLite the caller's first write takes the
    database's write lock, which serialises writers just as well.
    """
    if not on_postgresql(session):
        return
    for key in sorted(set(keys)):
        digest = hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest()
        number = int.from_bytes(digest, "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": number})


def claim(
    session: Session,
    *,
    kind: str,
    address: str,
    per_address: int,
    window_seconds: int,
    message: str,
    username: str = "",
    per_account: int | None = None,
) -> int:
    """Record one attempt, counted with the others of the window; the row's id.

    Raises :class:`TooManyAttempts` and records nothing when this attempt would pass
    a limit. Commits, so call it before the request changes anything else: the
    attempt must be visible to the others before it is evaluated.
    """
    username, address = username[:100], address[:64]
    keys = [f"{kind}:address:{address}"]
    if per_account is not None:
        keys.append(f"{kind}:account:{username}")
    lock_keys(session, *keys)
    row = LoginFailure(kind=kind, username=username, address=address)
    session.add(row)
    session.flush()
    since = utcnow() - timedelta(seconds=window_seconds)
    recent = select(func.count(LoginFailure.id)).where(
        LoginFailure.kind == kind, LoginFailure.created_at >= since
    )
    over = session.scalar(recent.where(LoginFailure.address == address)) > per_address
    if not over and per_account is not None:
        over = session.scalar(recent.where(LoginFailure.username == username)) > per_account
    if over:
        session.rollback()
        raise TooManyAttempts(message)
    # Rows older than the window count for nothing: prune them, never letting the
    # table grow with an attack. Only this kind's: other kinds have other windows.
    session.execute(
        delete(LoginFailure).where(LoginFailure.kind == kind, LoginFailure.created_at < since)
    )
    session.commit()
    return row.id


def release(session: Session, attempt_id: int) -> None:
    """Give an attempt's row back (a login that was right): it no longer counts.

    Commits, so a later rollback of the request (another limit, an error) cannot
    bring the row back as a failure.
    """
    session.execute(delete(LoginFailure).where(LoginFailure.id == attempt_id))
    session.commit()


def minutes(seconds: int) -> int:
    """A window in whole minutes, for messages ("try again in N minutes")."""
    return max(1, seconds // 60)
