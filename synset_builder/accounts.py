"""Accounts: creating annotators and checking passwords, shared by the CLI and the web app.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106) and
only the hash is stored. Checking a login always spends one hash computation, even
for an unknown name, so response time does not reveal which usernames exist.

Names are checked with ``fullmatch`` (patterns anchored at both ends of the text):
``re.match`` with ``$`` accepts a trailing newline, and "eve" plus a newline became
an account.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synset_builder.db.models import Annotator, Report, Vote
from synset_builder.errors import InvalidInput, NotFound

ROLES = ("annotator", "curator", "admin")
MIN_PASSWORD = 8
# \A and \Z, not ^ and $: safe with .match too (consensus/votes_import.py uses it).
USERNAME = re.compile(r"\A[A-Za-z0-9_.@-]{1,100}\Z")
WORKER_ID = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
CROWD_PREFIX = "crowd-"


class NameTaken(InvalidInput):
    """The name is held by another account."""


_HASHER = PasswordHasher()
# A real hash to verify against when the user does not exist (constant-ish time).
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD} characters.")


def check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise InvalidInput(
            f"The username {username!r} may only hold letters, digits and . _ @ - (100 at most)."
        )


def add_user(
    session: Session, username: str, role: str, password: str, *, reset: bool = False
) -> Annotator:
    """Create an account; with ``reset``, set the role and password of an existing one.

    Without ``reset`` an existing name is refused: a typo for a colleague's name
    silently replaced their password and role, and locked them out.
    """
    check_username(username)
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    check_password_rules(password)
    user = session.scalar(select(Annotator).where(Annotator.username == username))
    if user is None:
        user = Annotator(username=username, role=role, disabled=False, pages_done=0)
        session.add(user)
    elif not reset:
        raise NameTaken(
            f"An account named {username!r} exists already; add --reset to set its role "
            "and password (this logs it out everywhere)."
        )
    else:
        end_sessions(session, user)
    user.role = role
    user.password_hash = hash_password(password)
    session.flush()
    _joined_team(session, user)
    return user


def _joined_team(session: Session, user: Annotator) -> None:
    """A new member, or one back on the team: the items closed because nobody was left
    open again for them (consensus/team_growth.py)."""
    from synset_builder.consensus.team_growth import reopen_for

    reopen_for(session, [user.id])


def find_user(session: Session, username: str) -> Annotator:
    user = session.scalar(select(Annotator).where(Annotator.username == username))
    if user is None:
        raise NotFound(f"There is no account named {username!r} (see 'synset users list').")
    return user


def end_sessions(session: Session, user: Annotator) -> None:
    """Make every session cookie issued to ``user`` so far invalid.

    The cookie is signed, not stored, so it cannot be recalled: it carries the
    account's session version, and this adds one to it (in SQL, so two changes at
    once both count).
    """
    user.session_version = Annotator.session_version + 1
    session.flush()
    session.refresh(user, ["session_version"])


def set_disabled(session: Session, user: Annotator, disabled: bool) -> None:
    """Switch an account off or on. Either way its sessions end: a cookie from before
    a disable must not come back to life when the account is enabled again."""
    user.disabled = disabled
    end_sessions(session, user)
    if not disabled:
        _joined_team(session, user)


def authenticate(session: Session, username: str, password: str) -> Annotator | None:
    """The enabled account with this name and password, or None."""
    user = session.scalar(select(Annotator).where(Annotator.username == username))
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash or user.disabled:
        return None
    if _HASHER.check_needs_rehash(stored):
        user.password_hash = hash_password(password)
    return user


def check_worker_id(worker_id: str) -> None:
    if not WORKER_ID.fullmatch(worker_id):
        raise InvalidInput("The worker id may only hold letters, digits, _ and - (64 at most).")


def find_crowd_worker(session: Session, worker_id: str) -> Annotator | None:
    check_worker_id(worker_id)
    return session.scalar(select(Annotator).where(Annotator.worker_id == worker_id))


def crowd_name_free(session: Session, worker_id: str) -> None:
    """Raise :class:`NameTaken` when another account holds the name ``crowd-ID``."""
    username = f"{CROWD_PREFIX}{worker_id}"
    taken = session.scalar(select(func.count(Annotator.id)).where(Annotator.username == username))
    if taken:
        raise NameTaken(
            f"The worker id {worker_id!r} cannot join: the account name {username!r} "
            "belongs to another account."
        )


def crowd_worker(session: Session, worker_id: str, *, reopen: bool = True) -> Annotator:
    """The account tied to a crowd platform's worker id, created on first arrival.

    Raises :class:`NameTaken` when a staff account already has the name the worker
    would get (``crowd-ID``): the insert would break the unique name. A new account
    joins the team (:func:`_joined_team`); ``reopen=False`` leaves that to a caller
    that makes many at once (``votes import``: one statement for all of them).
    """
    user = find_crowd_worker(session, worker_id)
    if user is None:
        crowd_name_free(session, worker_id)
        user = Annotator(
            username=f"{CROWD_PREFIX}{worker_id}",
            role="annotator",
            worker_id=worker_id,
            disabled=False,
            pages_done=0,
        )
        session.add(user)
        session.flush()
        if reopen:
            _joined_team(session, user)
    return user


def new_join_secret(user: Annotator) -> str:
    """A secret for the browser a crowd worker joins from; only its hash is kept."""
    secret = secrets.token_urlsafe(32)
    user.join_secret = hashlib.sha256(secret.encode()).hexdigest()
    return secret


def join_secret_ok(user: Annotator, secret: str | None) -> bool:
    """Whether ``secret`` is the one the worker's first browser got."""
    if user.join_secret is None or not secret:
        return False
    digest = hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()
    return hmac.compare_digest(digest, user.join_secret)


@dataclass(frozen=True)
class AccountRow:
    """One line of ``synset users list``."""

    name: str
    role: str
    enabled: bool
    crowd_id: str | None
    votes: int
    open_reports: int
    last_seen: datetime | None

    def as_json(self) -> dict[str, object]:
        row = asdict(self)
        row["last_seen"] = self.last_seen.isoformat() if self.last_seen else None
        return row


def account_rows(session: Session) -> list[AccountRow]:
    """Every account with its vote count, open reports and when it was last seen.

    Last seen is the later of its last login (or crowd join) and its last vote: a
    session lasts days, so a login alone would make an active annotator look absent.
    Votes count only for an account that has been in the web app (a login, or pages
    submitted): a worker known only from ``synset votes import`` was never seen,
    and their votes' time is the import's.
    """
    votes = (
        select(Vote.annotator_id, func.count().label("n"), func.max(Vote.created_at).label("last"))
        .group_by(Vote.annotator_id)
        .subquery()
    )
    reports = (
        select(Report.annotator_id, func.count().label("n"))
        .where(Report.resolution.is_(None))
        .group_by(Report.annotator_id)
        .subquery()
    )
    rows = session.execute(
        select(Annotator, votes.c.n, votes.c.last, reports.c.n)
        .outerjoin(votes, votes.c.annotator_id == Annotator.id)
        .outerjoin(reports, reports.c.annotator_id == Annotator.id)
        .order_by(Annotator.username)
    )
    out = []
    for user, n_votes, last_vote, n_reports in rows:
        came = user.last_login_at is not None or (user.pages_done or 0) > 0
        seen = [_aware(t) for t in (user.last_login_at, last_vote if came else None) if t]
        out.append(
            AccountRow(
                name=user.username,
                role=user.role,
                enabled=not user.disabled,
                crowd_id=user.worker_id,
                votes=n_votes or 0,
                open_reports=n_reports or 0,
                last_seen=max(seen) if seen else None,
            )
        )
    return out


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); compare them as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
