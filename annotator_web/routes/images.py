"""Thumbnails and the large view: resized once, cached, never the original on the grid."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from annotator_web.deps import ApiUser, SessionDep, SettingsDep
from annotator_web.thumbs import resized
from synset_builder.db.models import Image

router = APIRouter(include_in_schema=False)

CACHE = "private, max-age=31536000, immutable"


@router.get("/img/{image_id}/{size}")
def image(
    image_id: int,
    size: Literal["thumb", "large"],
    request: Request,
    session: SessionDep,
    cfg: SettingsDep,
    user: ApiUser,
) -> Response:
    row = session.execute(select(Image.sha256, Image.path).where(Image.id == image_id)).first()
    if row is None:
        raise HTTPException(status_code=404, detail="No such image.")
    sha256, stored = row
    etag = f'"{sha256[:20]}-{size}"'
    headers = {"ETag": etag, "Cache-Control": CACHE}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    try:
        path = resized(cfg.data_dir, sha256, stored, size)
    except OSError as exc:
        raise HTTPException(status_code=404, detail="The image file is missing.") from exc
    return FileResponse(path, media_type="image/jpeg", headers=headers)
