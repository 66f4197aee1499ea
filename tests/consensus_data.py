"""Builders for consensus tests: a synset with real photos as candidates, and votes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from synset_builder.db.models import Annotator, Candidate, Synset, Vote
from synset_builder.store import add_image


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


def make_annotators(session: Session, names: Sequence[str]) -> list[Annotator]:
    people = [Annotator(username=name, role="annotator") for name in names]
    session.add_all(people)
    session.flush()
    return people


def cast(session: Session, cand: Candidate, who: Annotator, answer: bool) -> None:
    session.add(Vote(candidate_id=cand.id, annotator_id=who.id, answer=answer))
    session.flush()
