"""What a page of work is, and what a fetch reads before picking one: the caller,
their place, the synset's path and examples.

Shared by the HTML pages and the JSON API; split from the picking and leasing
(:mod:`annotator_web.serving.fetch`) so that the dependency layer and the pages
can name these types without the fetch's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from annotator_web.serving.fetch_sql import SYNSET_COLUMNS
from annotator_web.serving.statements import Statements
from synset_builder.consensus import live
from synset_builder.db.models import Candidate, Consensus, Image, Synset, SynsetEdge
from synset_builder.decision import Decision
from synset_builder.pool import clean_clause


@dataclass(frozen=True)
class TaskItem:
    candidate_id: int
    image_id: int

    @property
    def image_url(self) -> str:
        return f"/img/{self.image_id}/thumb"


class SynsetRow(NamedTuple):
    """What a fetch reads of a synset, as a plain row (``fetch_sql.caller_place``); the
    attribute names are :class:`Synset`'s, so either serves a task."""

    id: int
    wnid: str
    name: str
    gloss: str
    target: bool
    goal: int | None
    initial_ids: list[int] | None


@dataclass(frozen=True)
class Task:
    """One page of work; ``items`` is empty when nothing is left for this annotator."""

    synset: Synset | SynsetRow | None
    items: list[TaskItem] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    # Set when consensus stopped counting this annotator's votes (nothing is served).
    excluded: str | None = None


class Account(NamedTuple):
    """The caller as a fetch reads them: enough to refuse a disabled account or an
    ended session (deps.current)."""

    id: int
    disabled: bool
    session_version: int


class Place(NamedTuple):
    """Where an annotator stands before a fetch (``fetch_sql.caller_place``)."""

    excluded: bool  # consensus stopped counting their votes
    current: SynsetRow | None  # the synset of their latest lease


def load_caller(
    session: Session, sql: Statements, annotator_id: int
) -> tuple[Account | None, Place]:
    """The annotator and their :class:`Place`, in one round trip (None: no such account)."""
    row = session.connection().execute(sql.caller_place, {"me": annotator_id}).first()
    if row is None:
        return None, Place(False, None)
    me, disabled, version, excluded, *synset = row
    # By name: a column list and a row type that drifted apart fail here, not later.
    current = (
        SynsetRow(**dict(zip(SYNSET_COLUMNS, synset, strict=True)))
        if synset[0] is not None
        else None
    )
    return Account(me, bool(disabled), version), Place(bool(excluded), current)


def exclusion_reason(session: Session, annotator_id: int) -> str | None:
    """Why consensus stopped trusting this annotator's votes, or None if it still does."""
    if live.may_vote(session, annotator_id):
        return None
    return live.exclusion_reason(session, annotator_id) or "low agreement with other annotators"


def synset_path(session: Session, synset: Synset | SynsetRow, depth: int = 4) -> list[str]:
    """Names from a distant ancestor down to the synset (dog > hound > whippet)."""
    names, current, seen = [synset.name], synset.id, {synset.id}
    for _ in range(depth - 1):
        parent = session.scalar(
            select(Synset)
            .join(SynsetEdge, SynsetEdge.parent_id == Synset.id)
            .where(SynsetEdge.child_id == current)
            .order_by(Synset.id)
            .limit(1)
        )
        if parent is None or parent.id in seen:
            break
        names.insert(0, parent.name)
        current = parent.id
        seen.add(parent.id)
    return names


def accepted_examples(session: Session, synset_id: int, n: int = 4) -> list[int]:
    stmt = (
        select(Candidate.image_id)
        .join(Consensus, Consensus.candidate_id == Candidate.id)
        .join(Image, Image.id == Candidate.image_id)
        .where(
            Candidate.synset_id == synset_id,
            Consensus.decision == Decision.accepted,
            clean_clause(),
        )
        .order_by(Consensus.p_yes.desc(), Candidate.id)
        .limit(n)
    )
    return list(session.scalars(stmt))
