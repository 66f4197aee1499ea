"""Takedowns: withdraw an image from every queue and every later export.

A creator or rights holder asks for a picture to go; ImageNet answered such
requests by hand. Here a request is a row (matched by the image's sha256, by the
URL it was fetched from, or by its creator), never a deletion: the files and the
votes stay, so revoking the request brings the image back exactly as it was.
The pool (``synset_builder.pool``) and the export read :func:`taken_down_clause`,
so "taken down" has one definition; ``synset verify`` uses :func:`taken_down_shas`
to find exports written before the request that still hold the image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from synset_builder.db.models import Candidate, Image, Takedown, utcnow
from synset_builder.errors import InvalidInput, NotFound

KINDS = ("sha256", "url", "creator")


@dataclass(frozen=True)
class TakedownResult:
    """What a request did: its row, and how many stored images it now withholds."""

    id: int
    kind: str
    value: str
    images: int
    created: bool


def _active(kind: str):  # noqa: ANN202 - a scalar subquery of the matching values
    return select(Takedown.value).where(Takedown.kind == kind, Takedown.revoked_at.is_(None))


def _matches() -> list[ColumnElement[bool]]:
    """One test per kind of request matching the ``Image`` row.

    By URL and by creator: an ``EXISTS`` each, joined through an index
    (candidate.url, candidate.creator, takedown.value; migration 0017). As ``NOT
    EXISTS`` terms PostgreSQL plans them as anti-joins: for a scan of a whole
    synset or table it hashes the few images the requests match (an empty takedown
    table: an empty hash, never probed), for the few rows a task fetch reads it may
    probe the indexes. The single ``EXISTS`` over the image's candidates with an OR
    that this replaced probed the candidate index once per image: a million probes
    to count a million-image pool, empty table or not.
    """
    active = Takedown.revoked_at.is_(None)
    # By sha256: the image's own column against the few requests, hashed once per query.
    out: list[ColumnElement[bool]] = [Image.sha256.in_(_active("sha256"))]
    for kind, column in (("url", "url"), ("creator", "creator")):
        other = aliased(Candidate)
        out.append(
            exists()
            .where(other.image_id == Image.id, Takedown.value == getattr(other, column))
            .where(Takedown.kind == kind, active)
        )
    return out


def taken_down_clause() -> ColumnElement[bool]:
    """True for an ``Image`` row matched by an active takedown.

    A URL or creator request withdraws the whole image, not just the candidate
    that carried that URL: the same bytes found twice are the same picture.
    """
    return or_(*_matches())


def not_taken_down_clause() -> ColumnElement[bool]:
    """The negation as ``NOT EXISTS`` terms ANDed at the top, which PostgreSQL can
    turn into anti-joins (a negated OR of them it cannot)."""
    return and_(*(~m for m in _matches()))


def _normalise(kind: str, value: str) -> str:
    value = value.strip()
    if kind not in KINDS:
        raise InvalidInput(f"A takedown is by one of {', '.join(KINDS)}, not {kind!r}.")
    if not value:
        raise InvalidInput(f"The takedown {kind} is empty.")
    if kind == "sha256":
        value = value.lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise InvalidInput(f"{value!r} is not a sha256 (64 hexadecimal digits).")
    return value


def matching_images(session: Session, takedown_id: int) -> int:
    """How many stored images one request (active or not) covers."""
    row = session.get(Takedown, takedown_id)
    if row is None:
        raise NotFound(f"There is no takedown {takedown_id}.")
    if row.kind == "sha256":
        cond = Image.sha256 == row.value
    else:
        column = Candidate.url if row.kind == "url" else Candidate.creator
        cond = exists().where(Candidate.image_id == Image.id, column == row.value)
    return len(session.scalars(select(Image.id).where(cond)).all())


def add_takedown(session: Session, *, kind: str, value: str, reason: str) -> TakedownResult:
    """Record a request; asking again for the same thing returns the active row."""
    value = _normalise(kind, value)
    if not reason.strip():
        raise InvalidInput("A takedown needs a --reason, kept on record.")
    row = session.scalars(
        select(Takedown).where(
            Takedown.kind == kind, Takedown.value == value, Takedown.revoked_at.is_(None)
        )
    ).first()
    created = row is None
    if row is None:
        row = Takedown(kind=kind, value=value, reason=reason.strip(), created_at=utcnow())
        session.add(row)
        session.flush()
    return TakedownResult(row.id, kind, value, matching_images(session, row.id), created)


def revoke_takedown(session: Session, takedown_id: int, *, reason: str) -> TakedownResult:
    """Reverse a request: the images come back to the queues and exports."""
    row = session.get(Takedown, takedown_id)
    if row is None:
        raise NotFound(f"There is no takedown {takedown_id}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        row.revoke_reason = reason.strip() or None
        session.flush()
    return TakedownResult(row.id, row.kind, row.value, matching_images(session, row.id), False)


def list_takedowns(session: Session, *, include_revoked: bool = False) -> list[dict[str, object]]:
    stmt = select(Takedown).order_by(Takedown.id)
    if not include_revoked:
        stmt = stmt.where(Takedown.revoked_at.is_(None))
    return [
        {
            "id": t.id,
            "kind": t.kind,
            "value": t.value,
            "reason": t.reason,
            "created_at": _iso(t.created_at),
            "revoked_at": _iso(t.revoked_at),
            "images": matching_images(session, t.id),
        }
        for t in session.scalars(stmt)
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def taken_down_shas(session: Session, shas: Iterable[str]) -> set[str]:
    """Which of these sha256s are withheld now (for checking old exports)."""
    wanted = sorted(set(shas))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            session.scalars(
                select(Image.sha256).where(Image.sha256.in_(chunk), taken_down_clause())
            )
        )
    return found


def active_values(session: Session) -> dict[str, set[str]]:
    """The active requests by kind, to check manifests of files this database never stored."""
    return {kind: set(session.scalars(_active(kind))) for kind in KINDS}
