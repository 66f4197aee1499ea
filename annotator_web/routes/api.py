"""The JSON API (documented at /openapi.json); same query functions as the pages.

It authenticates by the session cookie (POST /api/session) and takes only
``application/json`` bodies, which a cross-site HTML form cannot send, so it needs
no CSRF token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from annotator_web import flash
from annotator_web.deps import (
    ApiCaller,
    ApiUser,
    SessionDep,
    SettingsDep,
    StatementsDep,
    require_json,
)
from annotator_web.reports import REPORT_REASONS, report_image
from annotator_web.routes.task_pages import WNID
from annotator_web.serving.fetch import next_task
from annotator_web.serving.page import Task, load_caller
from annotator_web.serving.submit import record_votes, submit_page
from annotator_web.serving.undo import UndoRefused, undo_last_page
from annotator_web.stats import my_stats, synset_rows
from annotator_web.throttle import TooManyAttempts
from synset_builder.db.session import committed
from synset_builder.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api", tags=["api"])


class SynsetRef(BaseModel):
    wnid: str
    name: str
    gloss: str


# Ids are 32-bit integer columns; a larger number is a 422, not a database error.
DbId = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class Item(BaseModel):
    candidate_id: int
    image_url: str


class TaskOut(BaseModel):
    synset: SynsetRef | None
    items: list[Item]


class VoteIn(BaseModel):
    candidate_id: DbId
    label: bool


class VotesIn(BaseModel):
    votes: list[VoteIn] = Field(max_length=1000)
    unsure: list[DbId] = Field(default_factory=list, max_length=1000)
    elapsed_ms: int | None = Field(default=None, ge=0, le=2**31 - 1)


class VotesOut(BaseModel):
    accepted: int = Field(description="Votes newly recorded by this request.")
    already: int = Field(description="Items this annotator had already answered.")
    refused: list[int] = Field(description="Items not leased to the caller, or decided.")


class ReportIn(BaseModel):
    candidate_id: DbId
    reason: str = Field(description=", ".join(REPORT_REASONS))


def _json(payload: BaseModel) -> Response:
    """A hot route's answer, built from its (validated) response model.

    Returning a Response skips FastAPI's second validation and serialization of the
    same model, a visible share of the server's CPU under bench/web_load.py; the route's
    ``response_model`` still documents it in /openapi.json.
    """
    return Response(payload.model_dump_json(), media_type="application/json")


@router.get("/tasks/next", response_model=TaskOut)
def tasks_next(
    session: SessionDep,
    cfg: SettingsDep,
    sql: StatementsDep,
    caller: ApiCaller,
    n: Annotated[int, Query(ge=1, le=200)] = 24,
    synset: Annotated[str | None, Query(pattern=WNID)] = None,
) -> Response:
    """Lease up to ``n`` items of one synset to the caller (the server picks one if unset)."""

    def fetch() -> Task:
        sql.begin_fetch(session)
        user, place = load_caller(session, sql, caller.uid)
        return next_task(
            session, sql, annotator=caller.check(user), n=n, wnid=synset, cfg=cfg,
            decorate=False, place=place, goals=caller.request.app.state.goals,
        )  # fmt: skip

    try:  # run again if PostgreSQL picks its lease as a deadlock's victim
        task = committed(session, fetch)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    ref = (
        SynsetRef(wnid=task.synset.wnid, name=task.synset.name, gloss=task.synset.gloss)
        if task.synset
        else None
    )
    return _json(
        TaskOut(
            synset=ref,
            items=[Item(candidate_id=i.candidate_id, image_url=i.image_url) for i in task.items],
        )
    )


@router.post("/votes", response_model=VotesOut, dependencies=[Depends(require_json)])
def votes(
    body: VotesIn, session: SessionDep, cfg: SettingsDep, sql: StatementsDep, caller: ApiCaller
) -> Response:
    """Record answers; a repeat of recorded votes answers ``accepted: 0``."""
    user = caller.voter(session)
    votes = [(v.candidate_id, v.label) for v in body.votes]
    try:
        result = submit_page(
            session,
            sql,
            cfg,
            lambda: record_votes(
                session, sql, annotator=user, votes=votes, unsure=body.unsure,
                elapsed_ms=body.elapsed_ms, cfg=cfg,
            ),
        )  # fmt: skip
    except InvalidInput as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    return _json(VotesOut(accepted=result.accepted, already=result.already, refused=result.refused))


class UndoIn(BaseModel):
    """No fields: the caller and their last page are all an undo needs."""


class UndoOut(BaseModel):
    undone: int = Field(description="Votes taken back (kept aside in vote_undone).")
    leased: int = Field(description="Items of the page leased to the caller again.")


@router.post(
    "/undo",
    response_model=UndoOut,
    dependencies=[Depends(require_json)],
    responses={409: {"description": "Nothing to undo now; the detail says why."}},
)
def undo(
    body: UndoIn, session: SessionDep, cfg: SettingsDep, sql: StatementsDep, caller: ApiCaller
) -> Response:
    """Undo the caller's last submitted page, within ``web_undo_seconds`` of it and once.

    Its votes leave the counts and the consensus, and its items are leased to the
    caller again: the next ``GET /api/tasks/next`` (or /task) serves the page anew.
    The body is ``{}``: JSON like every write of this API, which a cross-site form
    cannot send (the API's stand-in for a CSRF token).
    """
    user = caller.voter(session)
    try:
        got = submit_page(
            session, sql, cfg, lambda: undo_last_page(session, sql, annotator_id=user.id, cfg=cfg)
        )
    except UndoRefused as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    flash.put(caller.request, undone=got.votes)  # what the next /task page says
    return _json(UndoOut(undone=got.votes, leased=got.leased))


@router.post("/reports", dependencies=[Depends(require_json)])
def reports(
    body: ReportIn, session: SessionDep, cfg: SettingsDep, user: ApiUser
) -> dict[str, bool]:
    """Report an image (offensive, private, wrong licence): it leaves every queue."""
    try:
        report_image(
            session,
            annotator=user,
            candidate_id=body.candidate_id,
            reason=body.reason,
            per_hour=cfg.web.reports_per_hour,
        )
    except TooManyAttempts as exc:
        raise HTTPException(status_code=429, detail=str(exc)) from exc
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    session.commit()
    return {"reported": True}


@router.get("/synsets")
def synsets(session: SessionDep, user: ApiUser) -> list[dict[str, object]]:
    """Target synsets with their funnel counts and goal progress."""
    return synset_rows(session)


@router.get("/synsets/{wnid}")
def synset(wnid: str, session: SessionDep, user: ApiUser) -> dict[str, object]:
    rows = synset_rows(session, wnid)
    if not rows:
        raise HTTPException(status_code=404, detail=f"Unknown synset {wnid!r}.")
    return rows[0]


@router.get("/me")
def me(session: SessionDep, user: ApiUser) -> dict[str, object]:
    """Your votes today, total, gold accuracy, pages done and crowd completion code."""
    return my_stats(session, user)
