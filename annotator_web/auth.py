"""Logging in under the attempt limits, CSRF tokens and the cookie-signing secret.

Failed logins are limited per account and per client address (annotator_web/
throttle.py). The address is the connection's peer; behind a reverse proxy it is
the one ``X-Forwarded-For`` names, but only when the peer is a proxy that
``SYNSET_WEB_TRUSTED_PROXIES`` names (annotator_web/proxy.py): anyone can send
that header, so believing it from anybody let one client pose as endless addresses.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request

from annotator_web import throttle
from synset_builder.accounts import (
    NameTaken,
    authenticate,
    check_worker_id,
    crowd_name_free,
    crowd_worker,
    find_crowd_worker,
    join_secret_ok,
    new_join_secret,
)
from synset_builder.config import Settings
from synset_builder.db.models import Annotator, utcnow
from synset_builder.errors import SynsetError

# An address may try a few accounts (a shared office NAT), an account only a few times.
ADDRESS_FACTOR = 4
# The cookie that holds a crowd worker's browser secret (sent to /join only).
JOIN_COOKIE = "synset_crowd"
JOIN_COOKIE_DAYS = 90


class JoinRefused(SynsetError):
    """A /join the study link, the worker id or the browser does not allow."""


def secret_key(cfg: Settings) -> str:
    """SYNSET_SECRET_KEY, or a key generated once and kept in the data dir (mode 0600)."""
    if cfg.secret_key:
        return cfg.secret_key
    path = Path(cfg.ensure_data_dir()) / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
        fh.flush()
        os.fsync(fh.fileno())
    return path.read_text().strip()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login(
    session: Session, *, username: str, password: str, address: str, cfg: Settings
) -> Annotator | None:
    """Check a password under the limits; the account, or None for a wrong password.

    Raises :class:`throttle.TooManyAttempts` before any check once the account or
    the address has used up its failures. Commits the attempt (see throttle.claim).
    """
    # PostgreSQL text cannot hold NUL; no account has one, so it counts as a wrong name.
    username = username.replace("\x00", "\ufffd")
    window = cfg.web.login_window_seconds
    attempt = throttle.claim(
        session,
        kind="login",
        username=username,
        address=address,
        per_account=cfg.web.login_attempts,
        per_address=ADDRESS_FACTOR * cfg.web.login_attempts,
        window_seconds=window,
        message=f"Too many failed logins; try again in {throttle.minutes(window)} minutes.",
    )
    user = authenticate(session, username, password)
    if user is not None:
        throttle.release(session, attempt)
        user.last_login_at = utcnow()
    return user


def crowd_join(
    session: Session,
    *,
    worker_id: str,
    study: str,
    secret: str | None,
    address: str,
    cfg: Settings,
) -> tuple[Annotator, str]:
    """The crowd worker's account, and the browser secret its join cookie must hold.

    The study key is a shared password: wrong keys are limited per address like
    failed logins. A worker id seen before logs in only from the browser that first
    joined with it (its cookie holds the secret whose hash the account keeps), so
    knowing someone's id is not enough to take over their work and completion code.
    New accounts are limited per address (``SYNSET_CROWD_JOIN_LIMIT`` an hour).
    Commits the attempts it counts (throttle.claim).
    """
    window = cfg.web.login_window_seconds
    attempt = throttle.claim(
        session,
        kind="study",
        address=address,
        per_address=cfg.web.login_attempts,
        window_seconds=window,
        message="Too many wrong study links from this address; try again in "
        f"{throttle.minutes(window)} minutes.",
    )
    key = cfg.crowd.study_key
    if not key or not hmac.compare_digest(key.encode(), study.encode("utf-8", "replace")):
        raise JoinRefused("This study link is not valid.")
    throttle.release(session, attempt)
    check_worker_id(worker_id)
    user = find_crowd_worker(session, worker_id)
    if user is None:
        user = _new_worker(session, worker_id=worker_id, address=address, cfg=cfg)
        return user, new_join_secret(user)
    if user.disabled:
        raise JoinRefused("This account is disabled.")
    if user.join_secret is None:  # joined before browser secrets, or a curator reset it
        return user, new_join_secret(user)
    if secret is None or not join_secret_ok(user, secret):
        raise JoinRefused(
            "This worker id has already joined from another browser. Continue in that "
            "browser, or ask the study's researcher to let you join from this one."
        )
    return user, secret


def _new_worker(session: Session, *, worker_id: str, address: str, cfg: Settings) -> Annotator:
    crowd_name_free(session, worker_id)  # before counting a join that cannot happen
    throttle.claim(
        session,
        kind="join",
        username=worker_id,
        address=address,
        per_address=cfg.crowd.join_limit,
        window_seconds=throttle.JOIN_WINDOW,
        message="Too many new accounts from this address; try again in an hour.",
    )
    try:
        return crowd_worker(session, worker_id)
    except IntegrityError as exc:  # the same new id joined at the same moment elsewhere
        session.rollback()
        raise NameTaken(f"The worker id {worker_id!r} joined from another browser.") from exc


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted) and hmac.compare_digest(str(expected), str(submitted))
