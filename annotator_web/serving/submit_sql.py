"""The SQL of a submit (a page's answers), built once per backend, reused with parameters.

Why prebuilt: see :mod:`annotator_web.serving.fetch_sql`. Parameters: ``me`` (the
annotator), ``now``, ``ids``/``released`` (lists), the rows of a multi-row write
(``synset_builder.db.bulk.rows_params``).
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Insert, Select, Update, bindparam, exists, false, func, select, true

from synset_builder.consensus import live
from synset_builder.db.bulk import in_list, insert_rows
from synset_builder.db.models import Annotator, Candidate, Consensus, Gold, Lease, Unsure, Vote

ME = bindparam("me")
NOW = bindparam("now")
VOTE_COLUMNS = ("candidate_id", "annotator_id", "answer", "time_ms", "created_at")
UNSURE_COLUMNS = ("candidate_id", "annotator_id", "created_at")


@cache
def answer_state(postgresql: bool) -> Select[tuple[int, bool, bool, bool]]:
    """Per submitted id: leased to ``me``, already answered by ``me``, still votable.

    Votable means open (consensus still wants votes) or gold (always answerable).
    An id that is no candidate yields no row, so it counts as refused. Every table is
    joined by key, not tested with ``EXISTS``: in a select list PostgreSQL may run an
    ``EXISTS`` as a hashed scan of the whole table (``live.open_joined``).
    """
    return (
        select(
            Candidate.id,
            func.coalesce(Lease.annotator_id == ME, false()),
            Vote.candidate_id.is_not(None),
            live.open_joined() | Gold.candidate_id.is_not(None),
        )
        .outerjoin(Lease, Lease.candidate_id == Candidate.id)
        .outerjoin(Vote, (Vote.candidate_id == Candidate.id) & (Vote.annotator_id == ME))
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .outerjoin(Gold, Gold.candidate_id == Candidate.id)
        .where(in_list(Candidate.id, "ids", postgresql))
    )


@cache
def insert_votes(postgresql: bool) -> Insert:
    """One vote per (candidate, annotator): a repeat inserts nothing and returns nothing."""
    table = Vote.__table__
    return (
        insert_rows(table, VOTE_COLUMNS, postgresql)
        .on_conflict_do_nothing(index_elements=[table.c.candidate_id, table.c.annotator_id])
        .returning(table.c.candidate_id)
    )


@cache
def insert_unsure(postgresql: bool) -> Insert:
    return insert_rows(Unsure.__table__, UNSURE_COLUMNS, postgresql).on_conflict_do_nothing()


@cache
def release_leases(postgresql: bool) -> Update:
    """Answered items go back at once (expired now), so nobody waits for the lease."""
    table = Lease.__table__
    return (
        table.update()
        .where(in_list(table.c.candidate_id, "ids", postgresql), table.c.annotator_id == ME)
        .values(expires_at=NOW)
    )


@cache
def write_answers() -> Select[tuple[int, int, str | None]]:
    """PostgreSQL: :func:`insert_votes`, :func:`release_leases` (of ``released``) and
    :func:`count_page` (when a vote was recorded) in one statement.

    Rows: (candidate recorded, pages done, completion code); none when nothing was
    recorded. Parameters: the vote columns as arrays, ``released``, ``me``, ``now``.
    """
    recorded = insert_votes(True).cte("recorded")
    table = Lease.__table__
    released = table.update().where(
        in_list(table.c.candidate_id, "released", True), table.c.annotator_id == ME
    )
    people = Annotator.__table__
    counted = (
        people.update()
        .where(people.c.id == ME, exists(select(recorded.c.candidate_id)))
        .values(pages_done=people.c.pages_done + 1)
        .returning(people.c.pages_done, people.c.completion_code)
        .cte("counted")
    )
    return (
        select(recorded.c.candidate_id, counted.c.pages_done, counted.c.completion_code)
        .select_from(recorded)
        .join(counted, true())
        .add_cte(released.values(expires_at=NOW).cte("released"))
    )


@cache
def count_page() -> Update:
    table = Annotator.__table__
    return (
        table.update()
        .where(table.c.id == ME)
        .values(pages_done=table.c.pages_done + 1)
        .returning(table.c.pages_done, table.c.completion_code)
    )


@cache
def set_completion_code() -> Update:
    table = Annotator.__table__
    return table.update().where(table.c.id == ME).values(completion_code=bindparam("code"))
