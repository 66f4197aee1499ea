"""Thumbnails and the large view: resized once, cached, never the original on the grid.

Who may see an image: a curator any image; an annotator one they were served (a
lease on one of its candidates, held now or before, or an answer to it: a vote or
"unsure") or one their task page shows as an accepted example (a URL signed by the
server, so knowing an id is not enough). Nobody sees a taken-down image, and an
annotator no reported one. Every refusal is the 404 of a missing image, so other
people's ids cannot be counted or told apart from ids that do not exist.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import Select, bindparam, exists, or_, select

from annotator_web.auth import secret_key
from annotator_web.deps import CURATOR_ROLES, ApiUser, SessionDep, SettingsDep
from annotator_web.thumbs import resized
from synset_builder.db.models import Candidate, Image, Lease, Unsure, Vote
from synset_builder.pool import not_reported_clause
from synset_builder.takedown import taken_down_clause

router = APIRouter(include_in_schema=False)

CACHE = "private, max-age=31536000, immutable"
NOT_FOUND = "No such image."


@cache
def _access() -> Select[tuple[str, str, bool, bool, bool]]:
    """(sha256, path, taken down, reported, served to ``me``) of image ``image_id``.

    One round trip, like the lookup it replaces; each test is an index probe from the
    image's candidates (``candidate.image_id``) to the lease, vote and unsure rows.
    """
    me = bindparam("me")
    served = or_(
        *(
            exists().where(
                table.annotator_id == me,
                table.candidate_id == Candidate.id,
                Candidate.image_id == Image.id,
            )
            for table in (Lease, Vote, Unsure)
        )
    )
    return select(
        Image.sha256, Image.path, taken_down_clause(), ~not_reported_clause(), served
    ).where(Image.id == bindparam("image_id"))


def _key(request: Request) -> bytes:
    """The app's key for example URLs, derived from its secret (read once per app)."""
    state = request.app.state
    key = getattr(state, "example_url_key", None)
    if key is None:
        secret = secret_key(state.settings).encode()
        key = state.example_url_key = hashlib.sha256(b"example-image:" + secret).digest()
    return key


def _signature(request: Request, image_id: int) -> str:
    return hmac.new(_key(request), str(image_id).encode(), hashlib.sha256).hexdigest()[:32]


def example_url(request: Request, image_id: int) -> str:
    """The thumbnail URL of an accepted example, which any annotator shown it may open."""
    return f"/img/{image_id}/thumb?example={_signature(request, image_id)}"


@router.get("/img/{image_id}/{size}")
def image(
    image_id: int,
    size: Literal["thumb", "large"],
    request: Request,
    session: SessionDep,
    cfg: SettingsDep,
    user: ApiUser,
    example: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    params = {"image_id": image_id, "me": user.id}
    row = session.execute(_access(), params).first() if abs(image_id) < 2**31 else None
    if row is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    sha256, stored, taken_down, reported, served = row
    signed = example is not None and hmac.compare_digest(example, _signature(request, image_id))
    if user.role in CURATOR_ROLES:
        visible = not taken_down
    else:
        visible = not taken_down and not reported and (served or signed)
    if not visible:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    etag = f'"{sha256[:20]}-{size}"'
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        path = resized(cfg.data_dir, sha256, stored, size)
    except OSError as exc:
        raise HTTPException(status_code=404, detail="The image file is missing.") from exc
    return FileResponse(path, media_type="image/jpeg", headers=headers)
