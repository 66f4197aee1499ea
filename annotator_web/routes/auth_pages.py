"""Logging in and out: the form, the JSON session endpoint, crowd-platform arrivals.

Logging out ends every session of the account, not only this browser's: the cookie
is signed, not stored, so a copy of it could otherwise be replayed for its 14 days.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from annotator_web.auth import (
    JOIN_COOKIE,
    JOIN_COOKIE_DAYS,
    JoinRefused,
    client_address,
    crowd_join,
    login,
)
from annotator_web.deps import (
    SessionDep,
    SettingsDep,
    check_csrf,
    current,
    require_json,
    start_session,
)
from annotator_web.throttle import TooManyAttempts
from synset_builder.accounts import NameTaken, end_sessions
from synset_builder.db.models import Annotator, utcnow
from synset_builder.errors import InvalidInput

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def _end(request: Request, session: Session) -> None:
    """Log out: this cookie, and (if it is still valid) every other session of its account."""
    uid, version = request.session.get("uid"), request.session.get("sv")
    request.session.clear()
    user = session.get(Annotator, uid) if isinstance(uid, int) else None
    if current(user, version):  # a dead cookie cannot log its account out elsewhere
        end_sessions(session, user)
        session.commit()


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"user": None, "next": _safe_next(next), "error": None}
    )


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    session: SessionDep,
    cfg: SettingsDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    try:
        user = login(
            session, username=username, password=password, address=client_address(request), cfg=cfg
        )
    except TooManyAttempts as exc:
        error, status = str(exc), 429
    else:
        session.commit()
        if user is not None:
            start_session(request, user)
            return RedirectResponse(_safe_next(next), status_code=303)
        error, status = "Wrong username or password.", 401
    return request.app.state.templates.TemplateResponse(
        request,
        "login.html",
        {"user": None, "next": _safe_next(next), "error": error, "username": username},
        status_code=status,
    )


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request, session: SessionDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf_token)
    _end(request, session)
    return RedirectResponse("/login", status_code=303)


@router.get("/join", include_in_schema=False)
def join(
    request: Request,
    session: SessionDep,
    cfg: SettingsDep,
    worker: Annotated[str, Query(max_length=64)] = "",
    study: Annotated[str, Query(max_length=200)] = "",
    secret: Annotated[str | None, Cookie(alias=JOIN_COOKIE, max_length=200)] = None,
) -> Response:
    """Arrive from a crowd platform (Prolific / Mechanical Turk style link).

    The first arrival with a worker id ties the account to this browser (a secret
    cookie); a later one must come from that browser (auth.crowd_join).
    """
    try:
        user, browser_secret = crowd_join(
            session,
            worker_id=worker,
            study=study,
            secret=secret,
            address=client_address(request),
            cfg=cfg,
        )
    except TooManyAttempts as exc:
        raise HTTPException(status_code=429, detail=str(exc)) from exc
    except NameTaken as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    except (JoinRefused, InvalidInput) as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from exc
    user.last_login_at = utcnow()
    session.commit()
    start_session(request, user)
    response = RedirectResponse("/task", status_code=303)
    response.set_cookie(
        JOIN_COOKIE,
        browser_secret,
        max_age=JOIN_COOKIE_DAYS * 86400,
        path="/join",
        httponly=True,
        samesite="lax",
    )
    return response


class Credentials(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


@router.post("/api/session", tags=["api"], dependencies=[Depends(require_json)])
def api_login(
    body: Credentials, request: Request, session: SessionDep, cfg: SettingsDep
) -> dict[str, object]:
    """Log in; the answer sets the session cookie the other endpoints read."""
    try:
        user = login(
            session,
            username=body.username,
            password=body.password,
            address=client_address(request),
            cfg=cfg,
        )
    except TooManyAttempts as exc:
        raise HTTPException(status_code=429, detail=str(exc)) from exc
    session.commit()
    if user is None:
        raise HTTPException(status_code=401, detail="Wrong username or password.")
    start_session(request, user)
    return {"username": user.username, "role": user.role}


@router.delete("/api/session", tags=["api"])
def api_logout(request: Request, session: SessionDep) -> dict[str, bool]:
    """Log out; every session of the account ends, on every device."""
    _end(request, session)
    return {"ok": True}
