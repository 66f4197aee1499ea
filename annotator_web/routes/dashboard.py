"""Curator pages: progress per synset, annotators, reports, gold, goals, CSV of votes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from annotator_web.deps import PageCurator, SessionDep, check_csrf
from annotator_web.stats import annotator_page, open_reports, synset_page, votes_csv
from synset_builder.accounts import set_disabled as set_disabled_account
from synset_builder.consensus.refit import last_refits
from synset_builder.db.models import Annotator, Report, Synset, utcnow
from synset_builder.errors import NotFound
from synset_builder.gold import set_gold
from synset_builder.review.audit import pooled_now

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _back(note: str) -> Response:
    return RedirectResponse(f"/dashboard?note={note}", status_code=303)


Sort = Literal["name", "progress", "pending", "agreement", "hard", "votes_per_hour"]
AnnotatorSort = Literal["name", "votes", "speed", "gold", "agreement"]
Order = Literal["asc", "desc"]


@router.get("")
def dashboard(
    request: Request,
    session: SessionDep,
    user: PageCurator,
    note: str | None = None,
    sort: Sort = "name",
    order: Order | None = None,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    a_sort: AnnotatorSort = "name",
    a_order: Order | None = None,
    a_q: Annotated[str, Query(max_length=200)] = "",
    a_page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Synsets and annotators 50 to a page each (sorted, filtered by name), reports, gold.

    Each table has its own parameters (the annotators' start with ``a_``), and every
    link keeps the other table's, so paging one never resets the other.
    """
    table = synset_page(
        session, sort=sort, descending=None if order is None else order == "desc", q=q, page=page
    )
    people = annotator_page(
        session,
        sort=a_sort,
        descending=None if a_order is None else a_order == "desc",
        q=a_q,
        page=a_page,
    )

    def link(**change: object) -> str:
        """This page's address with some parameters changed (sort links, pagers)."""
        params = {"q": table.q, "sort": table.sort, "order": "desc" if table.descending else "asc",
                  "page": table.page, "a_q": people.q, "a_sort": people.sort,
                  "a_order": "desc" if people.descending else "asc", "a_page": people.page,
                  **change}  # fmt: skip
        return "/dashboard?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})

    return request.app.state.templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "user": user,
            "table": table,
            "synsets": table.rows,
            "link": link,
            "people": people,
            "annotators": people.rows,
            "reports": open_reports(session),
            "audit": pooled_now(session),  # issue 22: measured, beside the model's belief
            "refit": next(iter(last_refits(session, 1)), None),
            "note": note,
        },
    )


@router.post("/annotators/{annotator_id}")
def set_disabled(
    annotator_id: int,
    request: Request,
    session: SessionDep,
    user: PageCurator,
    disabled: Annotated[bool, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    target = session.get(Annotator, annotator_id)
    if target is None:
        raise HTTPException(status_code=404, detail="No such annotator.")
    if target.id == user.id:
        raise HTTPException(status_code=403, detail="You cannot disable your own account.")
    if target.role == "admin" and user.role != "admin":
        raise HTTPException(status_code=403, detail="Only an admin can disable an admin.")
    set_disabled_account(session, target, disabled)  # ends its sessions either way
    session.commit()
    return _back("disabled" if disabled else "enabled")


@router.post("/synsets/{wnid}/goal")
def set_goal(
    wnid: str,
    request: Request,
    session: SessionDep,
    user: PageCurator,
    goal: Annotated[int, Form(ge=1, le=10_000_000)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    synset = session.scalar(select(Synset).where(Synset.wnid == wnid))
    if synset is None:
        raise HTTPException(status_code=404, detail=f"Unknown synset {wnid!r}.")
    synset.goal = goal
    session.commit()
    return _back("goal")


@router.post("/reports/{report_id}")
def resolve_report(
    report_id: int,
    request: Request,
    session: SessionDep,
    user: PageCurator,
    resolution: Annotated[Literal["kept", "removed"], Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Kept: the image goes back into the queues. Removed: it stays out (nothing deleted)."""
    check_csrf(request, csrf_token)
    report = session.get(Report, report_id)
    if report is None:
        raise HTTPException(status_code=404, detail="No such report.")
    report.resolution = resolution
    report.resolved_at = utcnow()
    session.commit()
    return _back(resolution)


@router.post("/gold")
def mark_gold(
    request: Request,
    session: SessionDep,
    user: PageCurator,
    candidate_id: Annotated[int, Form()],
    answer: Annotated[bool, Form()],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf_token)
    try:
        set_gold(session, candidate_id, answer)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    session.commit()
    return _back("gold")


@router.get("/votes.csv")
def download_votes(request: Request, user: PageCurator) -> Response:
    """Every vote as item,worker,label (+ wnid, time, date), streamed."""
    maker = request.app.state.sessionmaker

    def rows() -> Iterator[str]:
        with maker() as session:
            yield from votes_csv(session)

    return StreamingResponse(
        rows(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="votes.csv"'},
    )
