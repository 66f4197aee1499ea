"""The SQL of a task fetch, built once per backend, reused with parameters.

Why not build it per request like the rest of the app: a fetch or a submit runs
about ten statements, and the pool clause alone is a dozen subqueries. Building those
expressions and generating their cache keys on every request cost more CPU than
PostgreSQL spent answering them (profiled under ``bench/web_load.py``). A statement
built once keeps its memoised cache key, so SQLAlchemy finds the compiled SQL at
once, and its text never changes, so psycopg prepares it on the server and
PostgreSQL stops re-planning a 12-table query on every fetch.

Every function here is cached and returns an immutable statement; the parameters
are named bind parameters the caller passes: ``synset_id``, ``me`` (the
annotator), ``now``, ``start`` (serve key), ``n`` (limit), ``skip``/``ids``
(lists). The definitions themselves stay where they are owned (``pool``,
``consensus.live``): this module only assembles them, and
:mod:`annotator_web.serving.statements` puts them in one object per backend.
The submit's statements are in :mod:`annotator_web.serving.submit_sql`.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from synset_builder.consensus import live
from synset_builder.db.bulk import DialectInsert, in_list, insert_rows, not_in_list
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Image,
    Lease,
    Requeue,
    Synset,
    Unsure,
    Vote,
)
from synset_builder.decision import Decision
from synset_builder.pool import clean_clause

ME = bindparam("me")
NOW = bindparam("now")
SYNSET = bindparam("synset_id")
LIMIT = bindparam("n")
# Row lists of a multi-row write (synset_builder.db.bulk.rows_params).
LEASE_COLUMNS = ("candidate_id", "annotator_id", "expires_at")


def initial_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate``: in its synset's initial subset."""
    return exists().where(Consensus.candidate_id == Candidate.id, Consensus.initial)


def requeued_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate``: sent back for more votes, not yet re-decided."""
    return Candidate.id.in_(select(Requeue.candidate_id).where(Requeue.resolved_at.is_(None)))


def serving_tiers(postgresql: bool) -> list[ColumnElement[bool]]:
    """``open_clause() AND tier`` for each tier of ``live.priority_order()``, first tier first.

    Each tier is served in serve-key order before the next one. Serving tier by
    tier lets a fetch read a page through the ``ix_candidate_serve_key`` index
    instead of ranking every candidate of the synset (the old sort grew with the synset), and
    each tier spells out "still open" in a form the planner can drive from the
    small side (the initial subset, the requeue rows) or check by primary key.
    The first tier takes the synset's initial subset as the list parameter
    ``initial`` (``Synset.initial_ids``): a consensus row does not know its synset.
    The last tier walks ``ix_candidate_serve_open``, which holds only candidates not
    yet settled (``Candidate.settled``), so its cost does not grow as items are
    decided.
    """
    initial_open = and_(
        in_list(Candidate.id, "initial", postgresql),
        exists().where(
            Consensus.candidate_id == Candidate.id,
            or_(~live.decided(), requeued_clause()),
        ),
    )
    settled = exists().where(
        Consensus.candidate_id == Candidate.id,
        or_(Consensus.initial, live.decided()),
    )
    return [
        initial_open,
        and_(requeued_clause(), ~initial_clause()),
        # The flag first: it is what ix_candidate_serve_open leaves out, so the walk
        # meets no settled item; the consensus row still decides (the flag may lag).
        and_(~Candidate.settled, ~settled, ~requeued_clause()),
    ]


def _mine(table: type[Vote] | type[Unsure]) -> ColumnElement[bool]:
    return exists().where(table.candidate_id == Candidate.id, table.annotator_id == ME)


def _available() -> list[ColumnElement[bool]]:
    """In the pool, not yet answered or skipped by ``me``, not held by anyone else."""
    return [
        clean_clause(),
        ~_mine(Vote),
        ~_mine(Unsure),
        ~exists().where(
            Lease.candidate_id == Candidate.id, Lease.expires_at > NOW, Lease.annotator_id != ME
        ),
    ]


def _candidates(postgresql: bool) -> Select[tuple[int, int]]:
    """(candidate, image) of the synset that ``me`` may be served now, minus ``skip``."""
    return (
        select(Candidate.id, Candidate.image_id)
        .join(Image, Image.id == Candidate.image_id)
        .where(
            Candidate.synset_id == SYNSET,
            *_available(),
            not_in_list(Candidate.id, "skip", postgresql),
        )
    )


def _locked(stmt: Select[tuple[int, int]], postgresql: bool) -> Select[tuple[int, int]]:
    """PostgreSQL: lock the picks, skipping rows a concurrent request is leasing."""
    # NO KEY UPDATE: a concurrent submit's foreign-key checks on these rows need not wait.
    locked = stmt.with_for_update(of=Candidate, skip_locked=True, key_share=True)
    return locked if postgresql else stmt


@cache
def gold_picks(postgresql: bool) -> Select[tuple[int, int]]:
    """Gold items in random order (joined from the small gold table, no synset scan)."""
    stmt = (
        _candidates(postgresql)
        .join(Gold, Gold.candidate_id == Candidate.id)
        .order_by(func.random())
        .limit(LIMIT)
    )
    return _locked(stmt, postgresql)


@cache
def fresh_picks(postgresql: bool) -> tuple[Select[tuple[int, int]], ...]:
    """One query per serving tier, in serve-key order; the last tier comes twice.

    The last tier (the bulk of a synset) is walked from ``start`` to the end, then
    from the beginning up to ``start``: concurrent annotators begin at different
    places instead of stepping over the same leased items at the front.
    """
    base = _candidates(postgresql).where(~exists().where(Gold.candidate_id == Candidate.id))
    key = live.serve_key()
    start = bindparam("start")
    *first, rest = serving_tiers(postgresql)
    stmts = [base.where(tier) for tier in first]
    stmts += [base.where(rest, key >= start), base.where(rest, key < start)]
    return tuple(
        _locked(stmt.order_by(key, Candidate.id).limit(LIMIT), postgresql) for stmt in stmts
    )


def _capped_count(stmt: Select[tuple[int]]) -> ColumnElement[int]:
    """``count(*)`` of ``stmt`` read no further than ``n`` rows."""
    return select(func.count()).select_from(stmt.limit(LIMIT).subquery()).scalar_subquery()


@cache
def synset_probe(postgresql: bool) -> Select[tuple[bool, ...]]:
    """One round trip before serving a synset: (below goal, items held by ``me``,
    then per small tier: open items for ``me``).

    Below goal: fewer accepted items than ``n`` (the goal). A synset with fewer
    candidates than its goal cannot have reached it, so the accepted count (a
    join) is only read near it, and neither count reads past the goal. With
    ``check_goal`` false neither is read and the answer is true (the caller knows
    it: annotator_web/serving/goals.py).

    Held items are a page reload's; the small tiers (the initial subset, requeued
    items) usually hold nothing this annotator may take, since they voted on the
    initial items long ago. Asking here, without the pool clause, saves running
    the full queries for them on most fetches.
    """
    candidates = select(Candidate.id).where(Candidate.synset_id == SYNSET)
    accepted = (
        select(Consensus.candidate_id)
        .join(Candidate, Candidate.id == Consensus.candidate_id)
        .where(Candidate.synset_id == SYNSET, Consensus.decision == Decision.accepted)
    )
    below_goal = case(
        (~bindparam("check_goal"), true()),
        (_capped_count(candidates) < LIMIT, true()),
        else_=_capped_count(accepted) < LIMIT,
    )
    held = exists().where(
        Lease.annotator_id == ME,
        Lease.expires_at > NOW,
        Lease.candidate_id == Candidate.id,
        Candidate.synset_id == SYNSET,
    )
    *first, _rest = serving_tiers(postgresql)
    open_to_me = [
        exists().where(Candidate.synset_id == SYNSET, tier, *_available()[1:]) for tier in first
    ]
    return select(below_goal, held, *open_to_me)


@cache
def held_items() -> Select[tuple[int, int]]:
    """Items of the synset ``me`` still holds and has not answered (a page reload)."""
    return (
        select(Candidate.id, Candidate.image_id)
        .join(Lease, Lease.candidate_id == Candidate.id)
        .join(Image, Image.id == Candidate.image_id)
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .outerjoin(Gold, Gold.candidate_id == Candidate.id)
        .where(
            clean_clause(),
            live.open_joined() | Gold.candidate_id.is_not(None),
            Candidate.synset_id == SYNSET,
            Lease.annotator_id == ME,
            Lease.expires_at > NOW,
            ~_mine(Vote),
            ~_mine(Unsure),
        )
        .order_by(Candidate.id)
        .limit(LIMIT)
    )


# The synset columns a fetch reads (serving.page.SynsetRow has the same names, in this order).
SYNSET_COLUMNS = ("id", "wnid", "name", "gloss", "target", "goal", "initial_ids")


@cache
def caller_place() -> Select[tuple]:
    """The annotator ``me`` (id, disabled, session version), whether consensus
    excluded them, then the columns of the synset of their latest lease (they stay on
    it while it lasts), or nulls: what every fetch reads first. Plain columns, not ORM
    entities: loading two entities cost more Python than the rest of the statement."""
    current = (
        select(Candidate.synset_id)
        .join(Lease, Lease.candidate_id == Candidate.id)
        .where(Lease.annotator_id == Annotator.id)
        .order_by(Lease.expires_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    synset = Synset.__table__.c
    return (
        select(
            Annotator.id,
            Annotator.disabled,
            Annotator.session_version,
            AnnotatorQuality.excluded,
            *(synset[name] for name in SYNSET_COLUMNS),
        )
        .outerjoin(AnnotatorQuality, AnnotatorQuality.annotator_id == Annotator.id)
        .outerjoin(Synset, Synset.id == current)
        .where(Annotator.id == ME)
    )


@cache
def leased(pick: Select[tuple[int, int]]) -> Select[tuple[int, int, bool]]:
    """PostgreSQL: run a pick query and lease what it picked, in one statement.

    The picks stay locked (``FOR NO KEY UPDATE SKIP LOCKED``) until the lease rows are
    written, so a fetch needs no transaction around the two; the conditional upsert
    of :func:`upsert_lease` still decides. Rows: (candidate, image, obtained).
    Parameters: the pick's, plus ``expires``.

    The statement's own transaction commits without waiting for the WAL flush
    (``synchronous_commit`` off for it alone: a fetch runs in autocommit). Under load
    the pick spent most of its time queued for WAL flushes; a lease lost in a
    database crash only puts its item back, as an expiry does, and the synchronous
    commit of any later vote flushes the lease with it.
    """
    picked = pick.cte("picked")
    table = Lease.__table__
    expires = bindparam("expires", type_=table.c.expires_at.type)
    take = pg_insert(table).from_select(
        list(LEASE_COLUMNS), select(picked.c.id, cast(ME, Integer), expires)
    )
    taken = _lease_if_free(take).cte("taken")
    # One row, set once; joined so that PostgreSQL evaluates it (a CTE nobody reads is not).
    async_commit = select(func.set_config("synchronous_commit", "off", true())).cte("async_commit")
    return (
        select(picked.c.id, picked.c.image_id, taken.c.candidate_id.is_not(None).label("obtained"))
        .outerjoin(taken, taken.c.candidate_id == picked.c.id)
        .join(async_commit, true())
    )


@cache
def target_synsets() -> Select[tuple[int]]:
    return select(Synset.id).where(Synset.target.is_(True)).order_by(Synset.id)


# Writes are Core statements on the tables, one statement for a page of rows
# (parameters from synset_builder.db.bulk.rows_params), without the ORM's unit of work.


@cache
def upsert_lease(postgresql: bool) -> Insert:
    """Take a lease that is new, expired or already ours; returns the ids obtained."""
    return _lease_if_free(insert_rows(Lease.__table__, LEASE_COLUMNS, postgresql))


def _lease_if_free(stmt: DialectInsert) -> Insert:
    """A lease insert that takes over only a row that is expired or already ours;
    returns the candidate ids obtained."""
    table = Lease.__table__
    return stmt.on_conflict_do_update(
        index_elements=[table.c.candidate_id],
        set_={"annotator_id": stmt.excluded.annotator_id, "expires_at": stmt.excluded.expires_at},
        where=(table.c.expires_at <= NOW) | (table.c.annotator_id == ME),
    ).returning(table.c.candidate_id)
