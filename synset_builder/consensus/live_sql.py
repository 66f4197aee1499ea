"""The statements of :func:`synset_builder.consensus.live.after_votes`, built once.

``after_votes`` runs inside every web submit. Building its queries per call, and
writing its decisions through the ORM unit of work, was about half of the CPU a
submit cost (profiled under ``bench/web_load.py``); built once with bind
parameters, each statement keeps its compiled form, and the decisions go out as
one multi-row upsert. Parameters: ``ids`` (a list), ``synset_id``,
``initial_votes``, ``now``.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Insert, Select, Update, bindparam, exists, func, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from synset_builder.db.models import Candidate, Consensus, Gold, Requeue, Vote

IDS = bindparam("ids", expanding=True)
SYNSET = bindparam("synset_id")


@cache
def items() -> Select[tuple[int, int, bool | None, bool | None, str | None]]:
    """Per candidate: synset, gold answer (or None), initial flag and decision (or None)."""
    return (
        select(
            Candidate.id, Candidate.synset_id, Gold.answer, Consensus.initial, Consensus.decision
        )
        .outerjoin(Gold, Gold.candidate_id == Candidate.id)
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .where(Candidate.id.in_(IDS))
        .order_by(Candidate.id)
    )


@cache
def has_initial_subset() -> Select[tuple[bool]]:
    # The synset filter sits inside EXISTS: outside it, the EXISTS was correlated to
    # every candidate row and only the first row was looked at, so the subset was
    # re-picked (an ordered scan of the whole synset) on most submits.
    return select(
        exists().where(
            Consensus.initial,
            Consensus.candidate_id == Candidate.id,
            Candidate.synset_id == SYNSET,
        )
    )


@cache
def prior() -> Select[tuple[float, int]]:
    """Sum of ``P(yes)`` and count of the synset's fully voted initial items."""
    return (
        select(func.coalesce(func.sum(Consensus.p_yes), 0.0), func.count())
        .join(Candidate, Candidate.id == Consensus.candidate_id)
        .where(
            Candidate.synset_id == SYNSET,
            Consensus.initial,
            Consensus.n_votes >= bindparam("initial_votes"),
        )
    )


@cache
def synset_state() -> Select[tuple[bool, float, int]]:
    """``has_initial_subset`` and ``prior`` in one round trip."""
    total, n = prior().subquery().c
    return select(has_initial_subset().scalar_subquery(), total, n)


@cache
def votes() -> Select:
    return select(Vote.candidate_id, Vote.annotator_id, Vote.answer, Vote.created_at).where(
        Vote.candidate_id.in_(IDS)
    )


@cache
def open_requeues() -> Select[tuple[int, int, object]]:
    return select(Requeue.id, Requeue.candidate_id, Requeue.created_at).where(
        Requeue.candidate_id.in_(IDS), Requeue.resolved_at.is_(None)
    )


@cache
def resolve_requeues() -> Update:
    table = Requeue.__table__
    return table.update().where(table.c.id.in_(IDS)).values(resolved_at=bindparam("now"))


@cache
def upsert_consensus(postgresql: bool) -> Insert:
    """New rows are not initial; an existing row keeps its initial flag.

    RETURNING only so that SQLAlchemy sends a page's rows as one multi-row statement
    (insertmanyvalues) instead of one execution per row.
    """
    table = Consensus.__table__
    stmt = (pg_dialect if postgresql else sqlite_dialect).insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.candidate_id],
        set_={
            key: stmt.excluded[key]
            for key in ("p_yes", "decision", "method", "n_votes", "updated_at")
        },
    ).returning(table.c.candidate_id)


@cache
def mark_initial(postgresql: bool) -> Insert:
    """Put candidates in the initial subset, creating their pending rows where missing."""
    table = Consensus.__table__
    stmt = (pg_dialect if postgresql else sqlite_dialect).insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.candidate_id], set_={"initial": stmt.excluded.initial}
    )
