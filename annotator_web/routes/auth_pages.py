"""Logging in and out: the form, the JSON session endpoint, crowd-platform arrivals."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from annotator_web.auth import TooManyAttempts, client_address, login
from annotator_web.deps import SessionDep, SettingsDep, check_csrf, require_json
from synset_builder.accounts import crowd_worker
from synset_builder.db.models import Annotator
from synset_builder.errors import InvalidInput

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def _start(request: Request, user: Annotator) -> None:
    request.session.clear()
    request.session["uid"] = user.id


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
            _start(request, user)
            return RedirectResponse(_safe_next(next), status_code=303)
        error, status = "Wrong username or password.", 401
    return request.app.state.templates.TemplateResponse(
        request,
        "login.html",
        {"user": None, "next": _safe_next(next), "error": error, "username": username},
        status_code=status,
    )


@router.post("/logout", include_in_schema=False)
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/join", include_in_schema=False)
def join(
    request: Request,
    session: SessionDep,
    cfg: SettingsDep,
    worker: Annotated[str, Query(max_length=64)] = "",
    study: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Arrive from a crowd platform (Prolific / Mechanical Turk style link)."""
    key = cfg.crowd_study_key
    if not key or not hmac.compare_digest(key.encode(), study.encode()):
        raise HTTPException(status_code=403, detail="This study link is not valid.")
    try:
        user = crowd_worker(session, worker)
    except InvalidInput as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from exc
    if user.disabled:
        raise HTTPException(status_code=403, detail="This account is disabled.")
    session.commit()
    _start(request, user)
    return RedirectResponse("/task", status_code=303)


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
    _start(request, user)
    return {"username": user.username, "role": user.role}


@router.delete("/api/session", tags=["api"])
def api_logout(request: Request) -> dict[str, bool]:
    request.session.clear()
    return {"ok": True}
