"""Curator review: browse what the crowd decided, judge it, and run the blind audit.

Pages (``/review``, ``/review/WNID?decision=...``) and two JSON routes
(``GET /api/review/next``, ``POST /api/review``), for curators and admins only
(annotators get 403 on every one). A judgement is an expert decision
(synset_builder/review/decisions.py): it overrides consensus everywhere, keeps
the crowd's votes, and is reversible (``label: null`` hands the item back).
Like the rest of the JSON API, the POST authenticates by the session cookie and
takes only ``application/json``, so it needs no CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from annotator_web.deps import ApiCurator, PageCurator, SessionDep, require_json
from annotator_web.routes.task_pages import WNID
from synset_builder.decision import Decision
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.review import browse, decisions

router = APIRouter(tags=["review"])

Shown = Literal["accepted", "rejected", "undecided", "pending", "suspect", "reported"]
DbId = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class ReviewSynset(BaseModel):
    wnid: str
    name: str
    gloss: str


class ReviewVotes(BaseModel):
    yes: int
    no: int
    unsure: int


class ReviewItem(BaseModel):
    candidate_id: int
    image_url: str
    decision: str | None = Field(description="In force (an expert's over the crowd's); "
                                 "null for a blind audit item.")  # fmt: skip
    p_yes: float | None = Field(description="The consensus model's P(yes); null for audit items.")
    votes: ReviewVotes | None = Field(description="The crowd's votes; null for audit items.")


class ReviewNext(BaseModel):
    synset: ReviewSynset | None
    items: list[ReviewItem]


class Judgement(BaseModel):
    candidate_id: DbId
    label: bool | None = Field(description="true: shows the synset; false: does not; "
                               "null: hand the item back to the crowd's consensus.")  # fmt: skip


class ReviewIn(BaseModel):
    decisions: list[Judgement] = Field(max_length=decisions.MAX_BATCH)


class ReviewOut(BaseModel):
    accepted: int = Field(description="Judgements recorded (a confirmation counts too).")


def _item(tile: browse.Tile) -> ReviewItem:
    return ReviewItem(
        candidate_id=tile.candidate_id,
        image_url=f"/img/{tile.image_id}/thumb",
        decision=None if tile.audit else tile.decision,
        p_yes=None if tile.audit else tile.p_yes,
        votes=ReviewVotes(**tile.votes) if tile.votes is not None else None,
    )


@router.get("/api/review/next", response_model=ReviewNext)
def review_next(
    session: SessionDep,
    user: ApiCurator,
    n: Annotated[int, Query(ge=1, le=browse.MAX_PAGE)] = browse.PAGE,
    synset: Annotated[str | None, Query(pattern=WNID)] = None,
    decision: Shown | None = None,
) -> ReviewNext:
    """Items for a curator to judge: the blind audit's first (no decision, P(yes) or
    votes), then items of ``decision`` no curator has judged (default: undecided)."""
    wanted = decision or Decision.undecided
    wnid = synset or browse.open_audit_synset(session) or browse.first_with_work(session, wanted)
    found = browse.synset_ref(session, wnid) if wnid else None
    if found is None:
        if synset is not None:
            raise HTTPException(status_code=404, detail=f"Unknown synset {synset!r}.")
        return ReviewNext(synset=None, items=[])
    tiles = browse.audit_page(session, found.id, n)
    if len(tiles) < n:
        tiles += browse.page(session, found.id, wanted, n=n - len(tiles), unjudged=True)
    ref = ReviewSynset(wnid=found.wnid, name=found.name, gloss=found.gloss or "")
    return ReviewNext(synset=ref, items=[_item(t) for t in tiles])


@router.post("/api/review", response_model=ReviewOut, dependencies=[Depends(require_json)])
def review_post(body: ReviewIn, session: SessionDep, user: ApiCurator) -> ReviewOut:
    """Record judgements; one unknown item refuses the whole request (nothing written)."""
    try:
        done = decisions.record(
            session, [(d.candidate_id, d.label) for d in body.decisions], curator_id=user.id
        )
    except NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    session.commit()
    return ReviewOut(accepted=done.recorded)


@router.get("/review", include_in_schema=False)
def review_home(request: Request, session: SessionDep, user: PageCurator) -> Response:
    """Synsets with their counts, each a link to its grids; audit progress and pooled."""
    rows, pooled = browse.overview(session)
    return request.app.state.templates.TemplateResponse(
        request,
        "review.html",
        {"user": user, "rows": rows, "pooled": pooled, "decisions": browse.DECISIONS},
    )


@router.get("/review/{wnid}", include_in_schema=False)
def review_grid(
    wnid: Annotated[str, Path(pattern=WNID)],
    request: Request,
    session: SessionDep,
    user: PageCurator,
    decision: Shown | None = None,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Response:
    """A page of tiles, cut by key. Without ``decision``, the synset's open audit comes
    first (blind tiles); with no audit open, its undecided items."""
    found = browse.synset_ref(session, wnid)
    if found is None:
        raise HTTPException(status_code=404, detail=f"Unknown synset {wnid!r}.")
    audit = decision is None and browse.audit_page(session, found.id, 1)
    if audit:
        tiles = browse.audit_page(session, found.id, browse.PAGE, after)
    else:
        decision = decision or Decision.undecided
        tiles = browse.page(session, found.id, decision, n=browse.PAGE, after=after)
    more = len(tiles) == browse.PAGE
    return request.app.state.templates.TemplateResponse(
        request,
        "review_grid.html",
        {
            "user": user,
            "synset": found,
            "tiles": tiles,
            "audit": bool(audit),
            "decision": decision,
            "decisions": browse.DECISIONS,
            "after": after,
            "next_after": tiles[-1].candidate_id if more else None,
        },
    )
