"""The annotator's page: one synset, a grid of candidates, submit, next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from annotator_web import flash
from annotator_web.deps import (
    LoginRequired,
    PageUser,
    SessionDep,
    SettingsDep,
    StatementsDep,
    check_csrf,
    page_user,
)
from annotator_web.reports import REPORT_REASONS
from annotator_web.routes.images import example_url
from annotator_web.serving.fetch import next_task
from annotator_web.serving.submit import record_votes, submit_page
from annotator_web.serving.undo import seconds_left, undone_answers
from annotator_web.stats import my_stats
from synset_builder.db.models import Annotator
from synset_builder.db.session import committed
from synset_builder.errors import NotFound

router = APIRouter(include_in_schema=False)

WNID = r"^[A-Za-z0-9_.:-]{1,32}$"
SESSION_ENDED = "Your session ended; log in again: your answers on this page are kept."


def _from_script(request: Request) -> bool:
    """task.js sends the page with ``Accept: application/json``; a plain form does not."""
    return "application/json" in request.headers.get("accept", "")


def submitter(request: Request, session: SessionDep) -> Annotator:
    """The page's user, but task.js's submit gets a 401 it can read instead of the
    redirect to the login form: followed inside fetch, the redirect would leave the
    annotator on a page whose answers can no longer be sent, with nothing said."""
    try:
        return page_user(request, session)
    except LoginRequired:
        if _from_script(request):
            raise HTTPException(status_code=401, detail=SESSION_ENDED) from None
        raise


@router.get("/")
def home(user: PageUser) -> Response:
    return RedirectResponse("/dashboard" if user.role != "annotator" else "/task", 303)


@router.get("/task")
def task_page(
    request: Request,
    session: SessionDep,
    cfg: SettingsDep,
    sql: StatementsDep,
    user: PageUser,
    synset: Annotated[str | None, Query(pattern=WNID)] = None,
    n: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> Response:
    """The next page of tiles; right after a submit (its flash), with its Undo button.

    The undo window is read only after a submit: it is the one moment it can be open,
    and a plain task fetch should not pay for a look at the annotator's votes. Right
    after an undo, the page that comes back carries the answers that were taken back,
    so that fixing one wrong tile does not mean answering the whole page again.
    """
    said = flash.take(request)
    undo_left = seconds_left(session, user.id, cfg) if said.get("saved") else 0.0
    try:  # run again if PostgreSQL picks its lease as a deadlock's victim
        task = committed(
            session,
            lambda: next_task(
                session, sql, annotator=user, n=n or cfg.web.grid_size, wnid=synset, cfg=cfg,
                goals=request.app.state.goals,
            ),
        )  # fmt: skip
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    ids = [item.candidate_id for item in task.items]
    sent = undone_answers(session, user.id, ids) if "undone" in said else {}
    return request.app.state.templates.TemplateResponse(
        request,
        "task.html",
        {
            "user": user,
            "task": task,
            "examples": [example_url(request, image_id) for image_id in task.examples],
            "me": my_stats(session, user),
            "saved": said.get("saved"),
            "already": said.get("already"),
            "refused": said.get("refused"),
            "undone": said.get("undone"),
            "sent": sent,
            "undo_left": int(undo_left),
            "undo_seconds": cfg.web.undo_seconds,
            "pinned": synset,
            "reasons": REPORT_REASONS,
        },
    )


@router.post("/task")
def task_submit(
    request: Request,
    session: SessionDep,
    cfg: SettingsDep,
    sql: StatementsDep,
    user: Annotated[Annotator, Depends(submitter)],
    csrf_token: Annotated[str, Form()] = "",
    item: Annotated[list[int] | None, Form()] = None,
    yes: Annotated[list[int] | None, Form()] = None,
    unsure: Annotated[list[int] | None, Form()] = None,
    elapsed_ms: Annotated[int | None, Form(ge=0)] = None,
    synset: Annotated[str | None, Form(pattern=WNID)] = None,
) -> Response:
    """Marked = yes, unmarked = no, "unsure" = no answer (the item goes to someone else).

    A plain form gets a redirect to the next page; task.js gets its address as JSON
    (a redirect followed inside fetch would load that page, and take its flash, once
    for nothing).
    """
    check_csrf(request, csrf_token)
    marked, skipped = set(yes or []), set(unsure or [])
    votes = [(i, i in marked) for i in dict.fromkeys(item or []) if i not in skipped]
    result = submit_page(
        session,
        sql,
        cfg,
        lambda: record_votes(
            session, sql, annotator=user, votes=votes, unsure=sorted(skipped),
            elapsed_ms=elapsed_ms, cfg=cfg,
        ),
    )  # fmt: skip
    counts = {"saved": result.accepted, "already": result.already}
    flash.put(request, **counts, **({"refused": len(result.refused)} if result.refused else {}))
    target = f"/task?synset={synset}" if synset else "/task"
    if _from_script(request):
        return JSONResponse({"next": target})
    return RedirectResponse(target, status_code=303)
