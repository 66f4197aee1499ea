"""Login throttling, CSRF tokens and the cookie-signing secret.

Failed logins are rows (``login_failure``), not process memory, so the limit holds
across the several uvicorn workers of ``synset serve`` and across restarts.
Successful logins never count towards it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

from annotator_web.tasks import now_utc
from synset_builder.accounts import authenticate
from synset_builder.config import Settings
from synset_builder.db.models import Annotator, LoginFailure
from synset_builder.errors import SynsetError

# An address may try a few accounts (a shared office NAT), an account only a few times.
ADDRESS_FACTOR = 4


class TooManyAttempts(SynsetError):
    """Too many failed logins for this account or address."""


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
    """Check a password under the rate limit; the account, or None for a wrong password."""
    # PostgreSQL text cannot hold NUL; no account has one, so it counts as a wrong name.
    username = username.replace("\x00", "\ufffd")
    since = now_utc() - timedelta(seconds=cfg.web_login_window_seconds)
    by_account = session.scalar(
        select(func.count(LoginFailure.id)).where(
            LoginFailure.username == username[:100], LoginFailure.created_at >= since
        )
    )
    by_address = session.scalar(
        select(func.count(LoginFailure.id)).where(
            LoginFailure.address == address[:64], LoginFailure.created_at >= since
        )
    )
    if (
        by_account >= cfg.web_login_attempts
        or by_address >= ADDRESS_FACTOR * cfg.web_login_attempts
    ):
        minutes = max(1, cfg.web_login_window_seconds // 60)
        raise TooManyAttempts(f"Too many failed logins; try again in {minutes} minutes.")
    user = authenticate(session, username, password)
    if user is None:
        session.add(LoginFailure(username=username[:100], address=address[:64]))
    return user


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
