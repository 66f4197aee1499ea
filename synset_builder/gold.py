"""Gold items: candidates with a known answer, mixed into tasks to measure annotators.

Shared by ``synset gold add CSV`` and the curator's dashboard. A CSV names each
item by candidate id (``item`` or ``candidate_id`` column) or by image and synset
(``sha256`` + ``wnid``), with ``label`` 1/0, yes/no or true/false.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Candidate, Gold, Image, Synset
from synset_builder.errors import InvalidInput, NotFound

LABELS = {"1": True, "yes": True, "true": True, "y": True, "0": False, "no": False,
          "false": False, "n": False}  # fmt: skip


def parse_label(text: str) -> bool:
    try:
        return LABELS[text.strip().lower()]
    except KeyError:
        raise InvalidInput(f"Unknown label {text!r}: use 1/0, yes/no or true/false.") from None


def set_gold(session: Session, candidate_id: int, answer: bool) -> bool:
    """Mark a candidate as gold (or change its answer); True when something changed."""
    if session.get(Candidate, candidate_id) is None:
        raise NotFound(f"Unknown item {candidate_id}.")
    row = session.get(Gold, candidate_id)
    if row is None:
        session.add(Gold(candidate_id=candidate_id, answer=answer))
        return True
    changed = row.answer != answer
    row.answer = answer
    return changed


@dataclass(frozen=True)
class GoldImport:
    rows: int
    changed: int


def import_csv(session: Session, path: Path) -> GoldImport:
    """Load gold answers from a CSV; the whole file is checked before anything is written."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
    except OSError as exc:
        raise NotFound(f"Cannot read {path}: {exc.strerror}.") from exc
    answers: dict[int, bool] = {}
    for line, rec in enumerate(records, start=2):
        if "label" not in rec:
            raise InvalidInput(f"{path} needs a 'label' column.")
        item = rec.get("item") or rec.get("candidate_id")
        if item:
            if not item.strip().isdigit():
                raise InvalidInput(f"{path} line {line}: item {item!r} is not a candidate id.")
            cid: int | None = int(item)
        elif rec.get("sha256") and rec.get("wnid"):
            cid = session.scalar(
                select(Candidate.id)
                .join(Image, Image.id == Candidate.image_id)
                .join(Synset, Synset.id == Candidate.synset_id)
                .where(Image.sha256 == rec["sha256"].strip(), Synset.wnid == rec["wnid"].strip())
            )
            if cid is None:
                raise NotFound(f"{path} line {line}: no candidate for that sha256 and wnid.")
        else:
            raise InvalidInput(f"{path} line {line}: give 'item', or 'sha256' and 'wnid'.")
        answers[cid] = parse_label(rec["label"] or "")
    changed = sum(set_gold(session, cid, answer) for cid, answer in answers.items())
    return GoldImport(rows=len(answers), changed=changed)
