"""The annotator's page: one synset, a grid of candidates, submit, next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from annotator_web.deps import PageUser, SessionDep, SettingsDep, StatementsDep, check_csrf
from annotator_web.reports import REPORT_REASONS
from annotator_web.routes.images import example_url
from annotator_web.serving.fetch import next_task
from annotator_web.serving.submit import record_votes, submit_page
from annotator_web.serving.undo import seconds_left
from annotator_web.stats import my_stats
from synset_builder.db.session import committed
from synset_builder.errors import NotFound

router = APIRouter(include_in_schema=False)

WNID = r"^[A-Za-z0-9_.:-]{1,32}$"


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
    saved: Annotated[int | None, Query(ge=0)] = None,
    already: Annotated[int | None, Query(ge=0)] = None,
    refused: Annotated[int | None, Query(ge=0)] = None,
    undone: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The next page of tiles; right after a submit (``saved``), with its Undo button.

    The undo window is read only after a submit: it is the one moment it can be open,
    and a plain task fetch should not pay for a look at the annotator's votes.
    """
    undo_left = seconds_left(session, user.id, cfg) if saved else 0.0
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
    return request.app.state.templates.TemplateResponse(
        request,
        "task.html",
        {
            "user": user,
            "task": task,
            "examples": [example_url(request, image_id) for image_id in task.examples],
            "me": my_stats(session, user),
            "saved": saved,
            "already": already,
            "refused": refused,
            "undone": undone,
            "undo_left": int(undo_left),
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
    user: PageUser,
    csrf_token: Annotated[str, Form()] = "",
    item: Annotated[list[int] | None, Form()] = None,
    yes: Annotated[list[int] | None, Form()] = None,
    unsure: Annotated[list[int] | None, Form()] = None,
    elapsed_ms: Annotated[int | None, Form(ge=0)] = None,
    synset: Annotated[str | None, Form(pattern=WNID)] = None,
) -> Response:
    """Marked = yes, unmarked = no, "unsure" = no answer (the item goes to someone else)."""
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
    target = f"/task?saved={result.accepted}&already={result.already}"
    if result.refused:
        target += f"&refused={len(result.refused)}"
    if synset:
        target += f"&synset={synset}"
    return RedirectResponse(target, status_code=303)
