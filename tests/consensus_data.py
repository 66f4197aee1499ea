"""Builders for consensus tests: a synset with real photos as candidates, and votes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from synset_builder.crawl.store import add_image
from synset_builder.db.models import Annotator, Candidate, Image, Synset, Vote


def make_synset(
    session: Session, wnid: str, photos: Sequence[Path], data_dir: Path, n: int
) -> list[Candidate]:
    """A target synset whose ``n`` candidates are real photographs."""
    synset = Synset(wnid=wnid, name=wnid, lemmas=[wnid], target=True)
    session.add(synset)
    session.flush()
    cands = []
    for rank, photo in enumerate(photos[:n]):
        image = add_image(session, data_dir, photo.read_bytes())
        cand = Candidate(image_id=image.id, synset_id=synset.id, source="test", rank=rank)
        session.add(cand)
        cands.append(cand)
    session.flush()
    return cands


def bare_candidates(conn: Connection, n: int) -> tuple[int, list[int]]:
    """A synset of ``n`` candidates whose images are rows without files, in three
    statements: for query-plan and trigger tests that need thousands of them.
    Returns the synset's id and the candidate ids, ascending."""
    sid = conn.execute(
        insert(Synset).returning(Synset.id),
        {"wnid": f"n{uuid.uuid4().int % 10**8:08d}", "name": "x", "lemmas": ["x"],
         "origin": "custom"},
    ).scalar_one()  # fmt: skip
    images = conn.execute(
        insert(Image).returning(Image.id),
        [{"sha256": uuid.uuid4().hex * 2, "path": "p", "width": 1, "height": 1, "format": "JPEG",
          "bytes": 1} for _ in range(n)],
    ).scalars().all()  # fmt: skip
    ids = conn.execute(
        insert(Candidate).returning(Candidate.id),
        [{"image_id": i, "synset_id": sid, "source": "t", "rank": k}
         for k, i in enumerate(images)],
    ).scalars().all()  # fmt: skip
    return sid, sorted(ids)


def make_annotators(session: Session, names: Sequence[str]) -> list[Annotator]:
    people = [Annotator(username=name, role="annotator") for name in names]
    session.add_all(people)
    session.flush()
    return people


def cast(session: Session, cand: Candidate, who: Annotator, answer: bool) -> None:
    session.add(Vote(candidate_id=cand.id, annotator_id=who.id, answer=answer))
    session.flush()
