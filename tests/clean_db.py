"""Putting real pictures into a test database the way the crawl does, for clean tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.crawl.store import add_image
from synset_builder.db.models import Candidate, Image, Synset, SynsetEdge
from synset_builder.pool import clean_clause


def synset(session: Session, wnid: str, parent: Synset | None = None) -> Synset:
    row = Synset(wnid=wnid, name=wnid, lemmas=[wnid], target=True)
    session.add(row)
    session.flush()
    if parent is not None:
        session.add(SynsetEdge(parent_id=parent.id, child_id=row.id))
        session.flush()
    return row


def candidate(
    session: Session, data_dir: Path, data: bytes, syn: Synset, url: str | None = None
) -> Candidate:
    image = add_image(session, data_dir, data)
    cand = Candidate(image_id=image.id, synset_id=syn.id, source="urls", url=url)
    session.add(cand)
    session.flush()
    return cand


def broken_candidate(session: Session, data_dir: Path, data: bytes, syn: Synset) -> Candidate:
    """A file that went bad on disk after it was registered (add_image refuses it)."""
    path = data_dir / "broken" / f"{len(data)}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    image = Image(sha256=f"{len(data):064x}", path="broken/" + path.name, width=500,
                  height=375, format="JPEG", bytes=len(data))  # fmt: skip
    session.add(image)
    session.flush()
    cand = Candidate(image_id=image.id, synset_id=syn.id, source="urls")
    session.add(cand)
    session.flush()
    return cand


def pool_ids(session: Session) -> set[int]:
    """Ids of the candidates left for voting."""
    return set(
        session.scalars(
            select(Candidate.id).join(Image, Image.id == Candidate.image_id).where(clean_clause())
        )
    )
