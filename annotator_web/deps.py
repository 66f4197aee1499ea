"""FastAPI dependencies: a database session per request, the logged-in user, roles.

Pages and the API differ only in how they refuse: a page redirects an anonymous
visitor to the login form, the API answers 401. Role checks answer 403 on both.

The session cookie is signed, not stored: it names the account (``uid``) and the
account's session version (``sv``) when it was issued. A logout, a disable or a
password or role change adds one to the version (``accounts.end_sessions``), so
every cookie issued before, copies included, stops working at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from annotator_web.auth import csrf_ok
from annotator_web.serving.page import Account
from annotator_web.serving.statements import Statements
from annotator_web.serving.submit import Voter
from synset_builder.config import Settings
from synset_builder.db.models import Annotator

CURATOR_ROLES = ("curator", "admin")
NOT_LOGGED_IN = "Log in first (POST /api/session)."


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request: committed when the route returns, rolled back on error.

    Async on purpose: FastAPI runs a sync dependency in the thread pool, and creating
    a session does no I/O. Only a session left with an open transaction (a route that
    did not commit, or an error) needs a thread to finish, the same work
    ``session_scope`` does.
    """
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    else:
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    finally:
        session.close()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_statements(request: Request) -> Statements:
    """The request path's statements, built once for the app's backend (create_app)."""
    return request.app.state.statements


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StatementsDep = Annotated[Statements, Depends(get_statements)]


def start_session(request: Request, user: Annotator) -> None:
    """Log ``user`` in on this browser: a fresh cookie (a new CSRF token with it)."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["sv"] = user.session_version


def _cookie(request: Request) -> tuple[int, int] | None:
    """(account id, session version) from the cookie; None without both."""
    uid, version = request.session.get("uid"), request.session.get("sv")
    if isinstance(uid, int) and isinstance(version, int):
        return uid, version
    return None


def current(user: Annotator | Account | Voter | None, version: int) -> bool:
    """Whether a cookie of ``version`` still logs in ``user``."""
    return user is not None and not user.disabled and user.session_version == version


def _user(request: Request, session: Session) -> Annotator | None:
    cookie = _cookie(request)
    if cookie is None:
        return None
    user = session.get(Annotator, cookie[0])
    # End the read transaction now: the route body runs in another pool thread, and a
    # request holding a connection while it waits for a thread can starve the pool.
    session.commit()
    if not current(user, cookie[1]):
        request.session.clear()
        return None
    return user


def page_user(request: Request, session: SessionDep) -> Annotator:
    user = _user(request, session)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe="/?=&"))
    # Who is looking, for an error page raised after this (a 403, a 404): its header
    # shows the name and Log out as every page does. A copy, not the session's object.
    request.state.viewer = Viewer(user.username, user.role)
    return user


@dataclass(frozen=True)
class Viewer:
    """What the page header shows of the account (templates/base.html)."""

    username: str
    role: str


AccountT = TypeVar("AccountT", bound="Annotator | Account | Voter")


# Built once: the statement keeps its compiled form (see annotator_web/serving/fetch_sql.py).
_VOTER = select(
    Annotator.id, Annotator.worker_id, Annotator.disabled, Annotator.session_version
).where(Annotator.id == bindparam("me"))


@dataclass(frozen=True)
class Caller:
    """An API caller as their session cookie names them, not yet loaded.

    The hot API routes load the account in their own worker thread, on the
    connection they go on to use: resolving it in a dependency costs a second
    thread hop, a commit and a second connection checkout per request.
    """

    request: Request
    uid: int
    version: int

    def load(self, session: Session) -> Annotator:
        return self.check(session.get(Annotator, self.uid))

    def voter(self, session: Session) -> Voter:
        """The caller as a :class:`Voter`, read as a plain row: an ORM load of the account
        was a twentieth of a vote submit's CPU (bench/web_load.py)."""
        row = session.connection().execute(_VOTER, {"me": self.uid}).first()
        return self.check(Voter(*row) if row is not None else None)

    def check(self, user: AccountT | None) -> AccountT:
        """The account loaded for ``uid``, if it still exists, is enabled and this
        cookie's session was not ended; else 401."""
        if not current(user, self.version):
            self.request.session.clear()
            raise HTTPException(status_code=401, detail=NOT_LOGGED_IN)
        return user


async def api_caller(request: Request) -> Caller:
    cookie = _cookie(request)
    if cookie is None:
        raise HTTPException(status_code=401, detail=NOT_LOGGED_IN)
    return Caller(request, *cookie)


def api_user(caller: Annotated[Caller, Depends(api_caller)], session: SessionDep) -> Annotator:
    user = caller.load(session)
    session.commit()  # like _user: hold no connection while the route waits for a thread
    return user


def page_curator(user: Annotated[Annotator, Depends(page_user)]) -> Annotator:
    if user.role not in CURATOR_ROLES:
        raise HTTPException(status_code=403, detail="This page is for curators.")
    return user


def api_curator(user: Annotated[Annotator, Depends(api_user)]) -> Annotator:
    if user.role not in CURATOR_ROLES:
        raise HTTPException(status_code=403, detail="This endpoint is for curators.")
    return user


def check_csrf(request: Request, token: str | None) -> None:
    if not csrf_ok(request, token):
        raise HTTPException(status_code=403, detail="The form expired; reload the page and retry.")


async def require_json(request: Request) -> None:
    """The API takes JSON only: a cross-site HTML form cannot produce it.

    Async though it awaits nothing: FastAPI runs a sync dependency in the thread pool,
    a thread hop per vote submit for a header check."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(status_code=415, detail="Send the body as application/json.")


PageUser = Annotated[Annotator, Depends(page_user)]
ApiUser = Annotated[Annotator, Depends(api_user)]
ApiCaller = Annotated[Caller, Depends(api_caller)]
PageCurator = Annotated[Annotator, Depends(page_curator)]
ApiCurator = Annotated[Annotator, Depends(api_curator)]
JsonBody = Depends(require_json)
