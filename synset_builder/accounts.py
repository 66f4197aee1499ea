"""Accounts: creating annotators and checking passwords, shared by the CLI and the web app.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106) and
only the hash is stored. Checking a login always spends one hash computation, even
for an unknown name, so response time does not reveal which usernames exist.
"""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Annotator
from synset_builder.errors import InvalidInput

ROLES = ("annotator", "curator", "admin")
MIN_PASSWORD = 8
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
WORKER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_HASHER = PasswordHasher()
# A real hash to verify against when the user does not exist (constant-ish time).
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD} characters.")


def add_user(session: Session, username: str, role: str, password: str) -> Annotator:
    """Create an account, or reset the role and password of an existing one."""
    if not USERNAME.match(username):
        raise InvalidInput(
            f"The username {username!r} may only hold letters, digits and . _ @ - (100 at most)."
        )
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    check_password_rules(password)
    user = session.scalar(select(Annotator).where(Annotator.username == username))
    if user is None:
        user = Annotator(username=username, role=role, disabled=False, pages_done=0)
        session.add(user)
    user.role = role
    user.password_hash = hash_password(password)
    session.flush()
    return user


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


def crowd_worker(session: Session, worker_id: str) -> Annotator:
    """The account tied to a crowd platform's worker id, created on first arrival."""
    if not WORKER_ID.match(worker_id):
        raise InvalidInput("The worker id may only hold letters, digits, _ and - (64 at most).")
    user = session.scalar(select(Annotator).where(Annotator.worker_id == worker_id))
    if user is None:
        user = Annotator(
            username=f"crowd-{worker_id}",
            role="annotator",
            worker_id=worker_id,
            disabled=False,
            pages_done=0,
        )
        session.add(user)
        session.flush()
    return user
