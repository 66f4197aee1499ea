"""The statements of :func:`synset_builder.consensus.live.after_votes`, built once.

``after_votes`` runs inside every web submit. Building its queries per call, and
writing its decisions through the ORM unit of work, was about half of the CPU a
submit cost (profiled under ``bench/web_load.py``); built once with bind
parameters, each statement keeps its compiled form, and the decisions go out as
one multi-row upsert. Parameters: ``ids`` (a list), ``synset_id``, ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    Select,
    Subquery,
    Text,
    Update,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import aliased

from synset_builder.consensus.quality import COUNT_KEYS
from synset_builder.db.bulk import RowForm, in_list, insert_rows
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    AnnotatorTally,
    AnnotatorTallyDelta,
    Candidate,
    Consensus,
    Gold,
    Requeue,
    Synset,
    Vote,
)

SYNSET = bindparam("synset_id")
# The kept counters (migration 0021) the gold matrix is solved from, in this order.
GOLD_KEPT = ("gold_answered", "gold_correct", "gold_truth_yes", "gold_said_yes")
CONSENSUS_COLUMNS = ("candidate_id", "p_yes", "decision", "method", "n_votes", "initial",
                     "reason", "updated_at")  # fmt: skip


@cache
def items_votes(postgresql: bool) -> Select:
    """Per candidate and vote: synset, the synset's initial ids, prior and hard share, gold answer
    (or None), initial flag and decision (or None), whether it has an open requeue,
    the team's size (:func:`team_size`), the vote (voter, answer, time), whether the
    voter can still be served, and the voter's stored counts, exclusion, its reason,
    gold counts and kept ledger rows (:func:`kept_gold`; None: no gold answered).
    One round trip for everything an update reads."""
    requeued = exists().where(Requeue.candidate_id == Candidate.id, Requeue.resolved_at.is_(None))
    voters = select(Vote.annotator_id).where(in_list(Vote.candidate_id, "ids", postgresql))
    tally = kept_gold(voters)
    return (
        select(
            Candidate.id,
            Candidate.synset_id,
            # As text: decoded once per synset and voter, not once per row (live._read_items).
            cast(Synset.initial_ids, Text),
            Synset.prior_yes,
            Synset.hard_share,
            Gold.answer,
            Consensus.initial,
            Consensus.decision,
            requeued,
            # The team's size rides along: one round trip fewer per submit.
            team_size().scalar_subquery(),
            Vote.annotator_id,
            Vote.answer,
            Vote.created_at,
            can_vote_clause(),
            AnnotatorQuality.nn,
            AnnotatorQuality.ny,
            AnnotatorQuality.yn,
            AnnotatorQuality.yy,
            AnnotatorQuality.answered_no,
            AnnotatorQuality.answered_yes,
            AnnotatorQuality.excluded,
            AnnotatorQuality.exclusion_reason,
            *(tally.c[key] for key in COUNT_KEYS),
            tally.c.ledger_rows,
        )
        .join(Synset, Synset.id == Candidate.synset_id)
        .outerjoin(Gold, Gold.candidate_id == Candidate.id)
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .outerjoin(Vote, Vote.candidate_id == Candidate.id)
        .outerjoin(Annotator, Annotator.id == Vote.annotator_id)
        .outerjoin(AnnotatorQuality, AnnotatorQuality.annotator_id == Vote.annotator_id)
        .outerjoin(tally, tally.c.voter == Vote.annotator_id)
        .where(in_list(Candidate.id, "ids", postgresql))
        .order_by(Candidate.id, Vote.id)
    )


def kept_gold(voters: Select[tuple[int]]) -> Subquery:
    """Per annotator among ``voters``: their (truth, vote) counts on gold items
    (:data:`COUNT_KEYS`) from the kept counters (tally row plus ledger rows, as
    synset_builder/tally.py reads them), and ``ledger_rows``, how many ledger rows
    that took (live.py folds them when many).

    Counting them from the votes (``quality.gold_tally``) read every vote each voter
    had ever cast, in every submit. The counters hold answered (A), correct (C),
    truth yes (Y) and said yes (S); with yy + yn + ny + nn = A, yy + nn = C,
    yy + yn = Y and yy + ny = S, the matrix follows exactly.
    """
    kept = union_all(
        *(
            select(
                table.c.annotator_id,
                *(table.c[name] for name in GOLD_KEPT),
                literal_column(str(rows), Integer).label("ledger_rows"),
            ).where(table.c.annotator_id.in_(voters))
            for table, rows in ((AnnotatorTally.__table__, 0), (AnnotatorTallyDelta.__table__, 1))
        )
    ).subquery("kept")
    answered, correct, truth_yes, said_yes = (func.sum(kept.c[name]) for name in GOLD_KEPT)
    yy = (truth_yes + said_yes + correct - answered) // literal_column("2", Integer)
    return (
        select(
            kept.c.annotator_id.label("voter"),
            yy.label("yy"),
            (truth_yes - yy).label("yn"),
            (said_yes - yy).label("ny"),
            (correct - yy).label("nn"),
            func.sum(kept.c.ledger_rows).label("ledger_rows"),
        )
        .group_by(kept.c.annotator_id)
        .subquery("gold_tally")
    )


def can_vote_clause() -> ColumnElement[bool]:
    """Over ``Annotator``: can log in and be served: not disabled, with a password or
    a crowd id. A worker of an imported vote file has a crowd id (``votes import``
    makes the account the study link would), so they count until disabled."""
    return and_(
        Annotator.disabled.is_(false()),
        or_(Annotator.password_hash.is_not(None), Annotator.worker_id.is_not(None)),
    )


def team_clause() -> ColumnElement[bool]:
    """Over ``Annotator`` outer-joined to ``AnnotatorQuality``: on the team the rule
    waits for. Everyone with the annotator role who can vote, from before their first
    vote (a team of three is three from the first submit), and curators or admins
    once they have voted (one who never votes is not waited for); not excluded."""
    return and_(
        can_vote_clause(),
        or_(Annotator.role == "annotator", func.coalesce(AnnotatorQuality.votes, 0) > 0),
        func.coalesce(AnnotatorQuality.excluded, false()).is_(false()),
    )


@cache
def team_size() -> Select[tuple[int]]:
    return (
        select(func.count())
        .select_from(Annotator)
        .outerjoin(AnnotatorQuality, AnnotatorQuality.annotator_id == Annotator.id)
        .where(team_clause())
    )


@cache
def others_answers() -> Select[tuple[int, int]]:
    """The no and yes answers others gave on the items annotator ``me`` voted on."""
    mine = aliased(Vote)
    theirs = aliased(Vote)
    return (
        select(
            func.sum(case((theirs.answer.is_(false()), 1), else_=0)),
            func.sum(case((theirs.answer.is_(true()), 1), else_=0)),
        )
        .select_from(mine)
        .join(theirs, theirs.candidate_id == mine.candidate_id)
        .where(mine.annotator_id == bindparam("me"), theirs.annotator_id != mine.annotator_id)
    )


@cache
def initial_ids() -> Select[tuple[list[int] | None]]:
    return select(Synset.initial_ids).where(Synset.id == SYNSET)


@cache
def fix_initial_ids() -> Update:
    """Record a synset's initial subset unless another submit did first (no row then)."""
    table = Synset.__table__
    return (
        table.update()
        .where(table.c.id == SYNSET, table.c.initial_ids.is_(None))
        .values(initial_ids=bindparam("initial_ids"))
        .returning(table.c.id)
    )


@cache
def open_requeues(postgresql: bool) -> Select[tuple[int, int, object]]:
    return select(Requeue.id, Requeue.candidate_id, Requeue.created_at).where(
        and_(in_list(Requeue.candidate_id, "ids", postgresql), Requeue.resolved_at.is_(None))
    )


@cache
def resolve_requeues(postgresql: bool) -> Update:
    table = Requeue.__table__
    return (
        table.update()
        .where(in_list(table.c.id, "ids", postgresql))
        .values(resolved_at=bindparam("now"))
    )


@cache
def upsert_consensus(postgresql: bool) -> Insert:
    """New rows are not initial; an existing row keeps its initial flag."""
    table = Consensus.__table__
    stmt = insert_rows(table, CONSENSUS_COLUMNS, postgresql)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.candidate_id],
        set_={
            key: stmt.excluded[key]
            for key in ("p_yes", "decision", "method", "n_votes", "reason", "updated_at")
        },
    )


@cache
def mark_initial(postgresql: bool) -> Insert:
    """Put candidates in the initial subset, creating their pending rows where missing."""
    table = Consensus.__table__
    stmt = insert_rows(table, CONSENSUS_COLUMNS, postgresql)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.candidate_id], set_={"initial": stmt.excluded.initial}
    )


RECORD_COLUMNS = ("yy", "yn", "ny", "nn", "answered_yes", "answered_no")


RECORD_ROW = ("annotator_id", *RECORD_COLUMNS, "votes", "gold_total", "gold_correct",
              "sensitivity", "specificity", "excluded", "updated_at")  # fmt: skip


@cache
def add_to_records(postgresql: bool) -> Insert:
    """Add a submit's credits and answers to the voters' records in one statement: a
    missing record is created with them, an existing one gets them added (an
    increment, so concurrent submits need not read or lock anything first). Rows:
    :data:`RECORD_ROW`, the counts being this submit's additions."""
    table = AnnotatorQuality.__table__
    stmt = insert_rows(table, RECORD_ROW, postgresql)
    added = {name: table.c[name] + stmt.excluded[name] for name in (*RECORD_COLUMNS, "votes")}
    return stmt.on_conflict_do_update(
        index_elements=[table.c.annotator_id],
        set_={**added, "updated_at": stmt.excluded.updated_at},
    )


@cache
def exclude_annotator() -> Update:
    table = AnnotatorQuality.__table__
    return (
        table.update()
        .where(table.c.annotator_id == bindparam("aid"), table.c.excluded.is_(false()))
        .values(excluded=True, exclusion_reason=bindparam("reason"))
    )


@dataclass(frozen=True)
class LiveStatements:
    """Every statement of ``live.after_votes`` for one backend, built once.

    The web app builds it in ``create_app`` (inside its serving statements); the
    command-line paths get the same object from their engine (:func:`statements_for`).
    """

    rows: RowForm
    items_votes: Select
    open_requeues: Select
    resolve_requeues: Update
    upsert_consensus: Insert
    mark_initial: Insert
    add_to_records: Insert
    initial_ids: Select
    fix_initial_ids: Update
    others_answers: Select
    exclude_annotator: Update

    @classmethod
    def build(cls, rows: RowForm) -> LiveStatements:
        pg = rows.postgresql
        return cls(
            rows=rows, items_votes=items_votes(pg), open_requeues=open_requeues(pg),
            resolve_requeues=resolve_requeues(pg), upsert_consensus=upsert_consensus(pg),
            mark_initial=mark_initial(pg), add_to_records=add_to_records(pg),
            initial_ids=initial_ids(), fix_initial_ids=fix_initial_ids(),
            others_answers=others_answers(), exclude_annotator=exclude_annotator(),
        )  # fmt: skip


@cache
def _for_form(rows: RowForm) -> LiveStatements:
    return LiveStatements.build(rows)


def statements_for(bind: Engine | Connection) -> LiveStatements:
    """The statements for ``bind``'s backend (one object per backend and process)."""
    return _for_form(RowForm.of(bind))
