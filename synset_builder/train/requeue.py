"""Sending suspect labels back to the annotators: the loop from model to crowd.

A suspect (a row of ``suspects.csv``) names an image by sha256 and the wnid it was
exported under; together they are one candidate. Requeueing writes a ``requeue``
row with the reason and sets the candidate's consensus decision to ``undecided``,
so the web app serves it for more votes (``consensus.live.open_clause`` treats a
candidate with an unresolved requeue row as open). Running it twice on the same
file adds nothing: a candidate with an unresolved row is left alone. This module
talks to the database only and never imports torch.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus.dynamic import NO_VOTERS
from synset_builder.consensus.live import after_votes
from synset_builder.db.models import Candidate, Consensus, Image, Requeue, Synset
from synset_builder.decision import Decision
from synset_builder.errors import InvalidInput, NotFound

REQUIRED = ("sha256", "given_wnid")


@dataclass(frozen=True)
class Suspect:
    sha256: str
    given_wnid: str
    predicted_wnid: str = ""
    p_given: float | None = None
    path: str = ""
    # Optional (suspects.csv files written before names were added lack it).
    predicted_name: str = ""


@dataclass
class RequeueResult:
    requeued: list[int] = field(default_factory=list)
    already_open: list[int] = field(default_factory=list)
    # Reopened, but every annotator who could vote on them already has: undecided with
    # that reason, for a curator (the review page's suspect and undecided grids).
    to_review: list[int] = field(default_factory=list)
    # Suspects that match no candidate here (an export of another database, say).
    not_found: list[Suspect] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "requeued": len(self.requeued),
            "already_open": len(self.already_open),
            "to_review": len(self.to_review),
            "not_found": [f"{s.sha256[:12]} {s.given_wnid}" for s in self.not_found],
        }


def read_suspects(path: Path, limit: int | None = None) -> list[Suspect]:
    """Parse a ``suspects.csv`` written by ``synset train`` (or by hand: two columns suffice)."""
    if not path.is_file():
        raise NotFound(f"The suspects file {path} does not exist.")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"The file {path} lacks the column(s) {', '.join(missing)}.")
        out: list[Suspect] = []
        for n, row in enumerate(reader, start=2):
            try:
                p = float(row["p_given"]) if row.get("p_given") else None
            except ValueError as exc:
                raise InvalidInput(
                    f"Line {n} of {path} has a p_given that is not a number."
                ) from exc
            out.append(
                Suspect(
                    row["sha256"].strip(),
                    row["given_wnid"].strip(),
                    (row.get("predicted_wnid") or "").strip(),
                    p,
                    row.get("path") or "",
                    (row.get("predicted_name") or "").strip(),
                )
            )
    return out[:limit] if limit is not None else out


def _reason(s: Suspect, source: str) -> str:
    parts = ["trainer suspect"]
    if s.predicted_wnid:
        name = f" ({s.predicted_name})" if s.predicted_name else ""
        parts.append(f"model predicts {s.predicted_wnid}{name}")
    if s.p_given is not None:
        parts.append(f"p_given={s.p_given:.4f}")
    return f"{', '.join(parts)} ({source})"


def _candidate(session: Session, s: Suspect) -> Candidate | None:
    """The candidate a suspect row names: its image (by sha256) in its given synset."""
    return session.scalar(
        select(Candidate)
        .join(Image, Image.id == Candidate.image_id)
        .join(Synset, Synset.id == Candidate.synset_id)
        .where(Image.sha256 == s.sha256, Synset.wnid == s.given_wnid)
    )


def _reopen(session: Session, candidate_id: int) -> None:
    """Mark the candidate undecided, so the web app serves it for votes again."""
    consensus = session.get(Consensus, candidate_id)
    if consensus is None:
        # Never decided by votes (an imported set, say): record it as undecided.
        session.add(
            Consensus(
                candidate_id=candidate_id,
                p_yes=0.5,
                decision=Decision.undecided,
                method="requeue",
                n_votes=0,
            )
        )
    else:
        consensus.decision = Decision.undecided


def requeue(
    session: Session,
    suspects: Iterable[Suspect],
    *,
    source: str = "",
    config: DynamicConfig | None = None,
) -> RequeueResult:
    """Reopen the candidates behind ``suspects`` for voting; the caller commits.

    With ``config`` (the consensus rule), each reopened item is decided again at
    once: one that nobody left can vote on (a small team that all voted on it)
    becomes ``undecided`` with that reason and goes to review (``to_review``:
    the review page lists it as a suspect and as undecided) instead of waiting
    for votes that cannot come.
    """
    result = RequeueResult()
    for s in suspects:
        cand = _candidate(session, s)
        if cand is None:
            result.not_found.append(s)
            continue
        open_row = session.scalar(
            select(Requeue.id).where(Requeue.candidate_id == cand.id, Requeue.resolved_at.is_(None))
        )
        if open_row is not None:
            result.already_open.append(cand.id)
            continue
        session.add(Requeue(candidate_id=cand.id, reason=_reason(s, source or "suspects.csv")))
        _reopen(session, cand.id)
        result.requeued.append(cand.id)
    session.flush()
    if config is not None and result.requeued:
        after_votes(session, result.requeued, config=config)
        result.to_review = list(
            session.scalars(
                select(Consensus.candidate_id)
                .where(
                    Consensus.candidate_id.in_(result.requeued),
                    Consensus.decision == Decision.undecided,
                    Consensus.reason == NO_VOTERS,
                )
                .order_by(Consensus.candidate_id)
            )
        )
    return result
