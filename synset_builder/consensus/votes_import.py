"""``synset votes import``: votes collected elsewhere (an MTurk batch, a spreadsheet).

Columns by position: item, worker, label (first row is a header). The item is a
candidate id, or an image sha256 when ``--synset WNID`` says which synset it was
asked about. A worker becomes an annotator account without a password (the same
crowd account the web app would create for that worker id). Labels are yes/no
words (1/0, yes/no, true/false): the database stores binary votes.

Re-importing is idempotent: a vote is unique per (candidate, annotator), so a row
already present is skipped; a row that contradicts a stored vote is skipped and
reported, never silently overwritten. Rows that cannot be used are reported
with their line and reason instead of aborting the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.accounts import WORKER_ID, crowd_worker
from synset_builder.consensus.evaluate import binary_label, read_rows
from synset_builder.consensus.live import after_votes
from synset_builder.db.models import Candidate, Image, Synset, Vote
from synset_builder.errors import InvalidInput, NotFound

SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
CHUNK = 500


@dataclass
class ImportResult:
    rows: int = 0
    added: int = 0
    already: int = 0
    skipped: list[str] = field(default_factory=list)  # "line N: reason"


def _resolve(session: Session, items: set[str], synset_id: int | None) -> dict[str, int]:
    """Map each item cell to a candidate id (by id, or by sha256 within the synset)."""
    ids = {item: int(item) for item in items if item.isdigit()}
    found = set(
        session.scalars(select(Candidate.id).where(Candidate.id.in_(set(ids.values())))).all()
    )
    out = {item: cid for item, cid in ids.items() if cid in found}
    shas = {item.lower(): item for item in items if SHA256.match(item)}
    if shas and synset_id is not None:
        for sha, cid in session.execute(
            select(Image.sha256, Candidate.id)
            .join(Candidate, Candidate.image_id == Image.id)
            .where(Candidate.synset_id == synset_id, Image.sha256.in_(list(shas)))
        ):
            out[shas[sha]] = cid
    return out


def import_votes(session: Session, path: Path, *, wnid: str | None = None) -> ImportResult:
    """Add the file's votes; update the consensus of the candidates that got new ones."""
    synset_id = None
    if wnid is not None:
        synset_id = session.scalar(select(Synset.id).where(Synset.wnid == wnid))
        if synset_id is None:
            raise NotFound(f"There is no synset {wnid}; add it with 'synset hierarchy add'.")
    rows = read_rows(path, 3)
    if wnid is None and not any(item.isdigit() for item, _, _ in rows):
        raise InvalidInput(
            f"The items in {path} are not candidate ids; give --synset WNID to read them "
            "as image sha256 hashes."
        )
    candidates = _resolve(session, {item for item, _, _ in rows}, synset_id)
    result = ImportResult(rows=len(rows))
    workers: dict[str, int] = {}
    existing: dict[tuple[int, int], bool] = {}
    touched: set[int] = set()
    for line, (item, worker, label) in enumerate(rows, start=2):
        answer = binary_label(label)
        cid = candidates.get(item)
        if answer is None:
            result.skipped.append(f"line {line}: label {label!r} is not a yes/no answer")
            continue
        if cid is None:
            what = "candidate" if item.isdigit() else f"image in {wnid}" if wnid else "item"
            result.skipped.append(f"line {line}: no {what} {item!r}")
            continue
        if not WORKER_ID.match(worker):
            result.skipped.append(f"line {line}: worker id {worker!r} is not valid")
            continue
        if worker not in workers:
            workers[worker] = crowd_worker(session, worker).id
            existing.update(
                ((c, workers[worker]), a)
                for c, a in session.execute(
                    select(Vote.candidate_id, Vote.answer).where(
                        Vote.annotator_id == workers[worker]
                    )
                )
            )
        key = (cid, workers[worker])
        if key in existing:
            if existing[key] == answer:
                result.already += 1
            else:
                result.skipped.append(
                    f"line {line}: {worker} already voted the other way on candidate {cid}"
                )
            continue
        session.add(Vote(candidate_id=cid, annotator_id=key[1], answer=answer))
        existing[key] = answer
        touched.add(cid)
        result.added += 1
    session.flush()
    ordered = sorted(touched)
    for start in range(0, len(ordered), CHUNK):
        after_votes(session, ordered[start : start + CHUNK])
    return result
