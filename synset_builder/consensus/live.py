"""Consensus on the request path: what the web app calls in each submit.

Cheap and incremental: ``after_votes`` reads only the candidates just voted on,
their votes, their voters' records and their synset's prior, builds the same
:class:`~synset_builder.consensus.model.SkillState` that ``synset consensus``
and ``evaluate``'s replay decide with, and applies the same verdict
(:func:`~synset_builder.consensus.dynamic.evaluate_item`). It never refits;
``synset consensus`` refits the skills and the priors and rewrites the rows.
Same votes in the same order, same decisions on every path (a test replays
them).

* The first time a synset gets a vote, its initial subset is fixed: the
  ``initial_size`` pool candidates with the lowest pseudo-random key (the same
  key :func:`priority_order` serves by, so it is what was being served anyway).
  Initial items wait for ``initial_votes`` votes, or for as many as the team
  has annotators who can still vote on them.
* An item nobody left can vote on (every annotator who can be served voted on
  it) is ``undecided``, with that reason, instead of pending forever.
* An item that has just passed the threshold credits its voters' records
  (leave-one-out) and the exclusion rule looks at them, and at the submitter's
  answers: a spammer is excluded within their first votes, and every item
  they voted on is decided again without them.
* A requeued candidate (unresolved ``requeue`` row) is open again until it has
  ``requeue_votes`` fresh votes and a decision (or nobody left can vote on it);
  its requeue row is then resolved.

Decision words: ``accepted``, ``rejected``, ``undecided`` (with a reason), and
``pending`` (still collecting votes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import ColumnElement, case, exists, false, func, literal_column, or_, select
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus.dynamic import Verdict, after_requeue, credits, evaluate_item
from synset_builder.consensus.live_read import Item, Read, read_items, utc
from synset_builder.consensus.live_records import Changes, judge, save_records
from synset_builder.consensus.live_sql import CONSENSUS_COLUMNS, LiveStatements, statements_for
from synset_builder.consensus.quality import exclusion_reason, may_vote
from synset_builder.db.models import (
    SERVE_KEY_MULTIPLIER,
    SERVE_KEY_RANGE,
    Candidate,
    Consensus,
    Gold,
    Image,
    Requeue,
    Synset,
    Vote,
)
from synset_builder.db.session import committed
from synset_builder.decision import DECIDED, Decision
from synset_builder.pool import clean_clause

__all__ = [
    "after_votes",
    "exclusion_reason",
    "may_vote",
    "open_clause",
    "open_joined",
    "priority_order",
    "serve_key",
]

DEFAULT = DynamicConfig()


def decided() -> ColumnElement[bool]:
    """Where-clause over ``Consensus``: the row holds a decision.

    The words are written into the SQL, not bound: a bound ``IN`` list is rendered
    into the text again on every execution, which the hot web statements pay for.
    """
    return Consensus.decision.in_([literal_column(f"'{word}'") for word in DECIDED])


def serve_key() -> ColumnElement[int]:
    """A pseudo-random but stable key per candidate (Knuth's multiplicative hash).

    The constants are inlined, not bound, so the query text matches the expression
    index ``ix_candidate_serve_key`` the web app walks (migration 0010).
    """
    return (Candidate.id * literal_column(str(SERVE_KEY_MULTIPLIER))) % literal_column(
        str(SERVE_KEY_RANGE)
    )


def _requeued() -> ColumnElement[bool]:
    return exists().where(Requeue.candidate_id == Candidate.id, Requeue.resolved_at.is_(None))


def open_clause() -> ColumnElement[bool]:
    """Where-clause over ``Candidate``: still needs votes (not decided, or requeued)."""
    has_decision = exists().where(Consensus.candidate_id == Candidate.id, decided())
    return or_(~has_decision, _requeued())


def open_joined() -> ColumnElement[bool]:
    """:func:`open_clause` for a query that outer-joins ``Consensus`` to ``Candidate``
    on its key (at most one row per candidate).

    Why a second spelling: where the test is not a plain ``WHERE`` conjunct (in a
    select list, or or-ed with another test), PostgreSQL may run the ``NOT EXISTS`` of
    :func:`open_clause` as a hashed subplan: every decided row of every synset read
    to answer for a page of items (a cost per vote submit that grows with the
    database; docs/benchmarks.md). A joined row is read by key instead.
    """
    return or_(~func.coalesce(decided(), false()), _requeued())


def priority_order() -> list[ColumnElement]:
    """Order-by terms: initial subsets first, then requeued items, then the random key."""
    initial = exists().where(Consensus.candidate_id == Candidate.id, Consensus.initial)
    return [
        case((initial, 0), else_=1),
        case((_requeued(), 0), else_=1),
        serve_key(),
    ]


def ensure_initial_subset(
    session: Session, synset_id: int, config: DynamicConfig, sql: LiveStatements | None = None
) -> bool:
    """Fix a synset's initial subset once, from the pool, in the order items are served.

    True when this call fixed it (so rows read before it may be stale). ``sql``: the
    backend's statements (None: those of the session's engine).
    """
    sql = sql or statements_for(session.get_bind())
    conn = session.connection()
    if (
        config.initial_size == 0
        or conn.execute(sql.initial_ids, {"synset_id": synset_id}).scalar() is not None
    ):
        return False
    picks = session.scalars(
        select(Candidate.id)
        .join(Image, Image.id == Candidate.image_id)
        .where(Candidate.synset_id == synset_id, clean_clause())
        .where(~exists().where(Gold.candidate_id == Candidate.id))
        .order_by(serve_key(), Candidate.id)
        .limit(config.initial_size)
    ).all()
    if not picks:
        return False
    ids = sorted(picks)
    # The synset row first: of two first submits on one synset, the second waits on
    # its row lock (PostgreSQL) or the database lock (SQLite), then finds it set and
    # marks nothing, so the subset is exactly what the synset row says.
    fixed = conn.execute(sql.fix_initial_ids, {"synset_id": synset_id, "initial_ids": ids})
    if fixed.first() is None:
        return False
    # Sorted by id, like every consensus write, so concurrent writers lock in one order.
    row = {"p_yes": 0.5, "decision": Decision.pending, "method": "dynamic", "n_votes": 0,
           "initial": True, "reason": None, "updated_at": datetime.now(UTC)}  # fmt: skip
    rows = [{**row, "candidate_id": cid} for cid in ids]
    conn.execute(sql.mark_initial, sql.rows.params(rows, CONSENSUS_COLUMNS))
    _forget_loaded(session, set(ids), synset_id)
    return True


def _read_items(
    session: Session, ids: list[int], config: DynamicConfig, sql: LiveStatements
) -> Read:
    """The items with their votes and requeues, each synset's prior, and each voter's
    record (:func:`~synset_builder.consensus.live_read.read_items`).

    Fixes initial subsets first where a synset has none yet: only a synset's very
    first submit (which fixes the subset) reads the items twice.
    """
    conn = session.connection()
    got, subsets, requeued = read_items(conn, ids, config, sql)
    if any(
        ensure_initial_subset(session, sid, config, sql)
        for sid, subset in sorted(subsets.items())
        if subset is None
    ):
        got, subsets, requeued = read_items(conn, ids, config, sql)
    if requeued:
        for rid, cid, created in conn.execute(sql.open_requeues, {"ids": ids}):
            got.items[cid].requeues.append((rid, utc(created)))
    if got.ledger_rows >= tally.VOTER_FOLD_AT:
        # Every submit appends ledger rows for its voters; folding theirs keeps the
        # next submit's read at one tally row per voter, dashboard or not.
        tally.fold_voters(session, list(got.state.counts))
    return got


def after_votes(
    session: Session,
    candidate_ids: Sequence[int],
    *,
    config: DynamicConfig = DEFAULT,
    voter: int | None = None,
    defer_reopen: bool = False,
    sql: LiveStatements | None = None,
) -> None:
    """Update the Consensus rows of the candidates just voted on, in the caller's transaction.

    ``voter``: who submitted these votes (the web app's submit); their answers
    count toward the always-the-same-answer check. Annotators the exclusion rule
    catches here are excluded at once, and every item they voted on is decided
    again without them: in this transaction, or with ``defer_reopen`` in the next
    one (:func:`reopen_deferred`, after the caller commits). The web app defers:
    then every transaction writes consensus rows before voters' records, one lock
    order, where deciding again here would write consensus rows after the records
    and deadlock with concurrent submits on PostgreSQL. ``sql``: the backend's
    statements (the web app's, built once; None: those of the session's engine).
    """
    ids = sorted(set(candidate_ids))
    if not ids:
        return
    sql = sql or statements_for(session.get_bind())
    session.flush()
    got = _read_items(session, ids, config, sql)
    changes = Changes()
    judged = _submitter_answers(got, voter, changes)
    now = datetime.now(UTC)
    rows, resolved, newly = _decide(session, got, config, changes, sql, now)
    newly.update(judge(got.state, config.exclusion, judged, session, sql))
    conn = session.connection()
    conn.execute(sql.upsert_consensus, sql.rows.params(rows, CONSENSUS_COLUMNS))
    if resolved:
        conn.execute(sql.resolve_requeues, {"ids": resolved, "now": now})
    _forget_loaded(session, set(ids))
    save_records(session, changes, newly, sql)
    session.flush()
    if newly:
        again = session.scalars(
            select(Vote.candidate_id).where(Vote.annotator_id.in_(sorted(newly)))
        ).all()
        if defer_reopen:
            session.info.setdefault(REOPEN, set()).update(again)
        else:
            after_votes(session, list(again), config=config, sql=sql)


def _submitter_answers(got: Read, voter: int | None, changes: Changes) -> list[int]:
    """Count the submitter's answers on these items toward their record; the submitter,
    when one of them counted (then the exclusion rule looks at them)."""
    state = got.state
    judged: list[int] = []
    if voter is not None and voter in state.answers:
        for item in got.items.values():
            for a, answer, _ in item.votes:
                if a == voter and state.answered(voter, int(answer)):
                    changes.answer(voter, int(answer))
                    judged = [voter]
    return judged


def _decide(
    session: Session,
    got: Read,
    config: DynamicConfig,
    changes: Changes,
    sql: LiveStatements,
    now: datetime,
) -> tuple[list[dict[str, object]], list[int], dict[int, str]]:
    """Per item: the consensus row to write; the requeues it resolves; the voters an
    item closing now gets excluded (credited first, leave-one-out)."""
    state = got.state
    rows: list[dict[str, object]] = []
    resolved: list[int] = []
    newly: dict[int, str] = {}
    for cid, item in got.items.items():
        verdict = _verdict(item, got, config)
        decision = verdict.decision
        if item.requeues and item.gold is None and decision != Decision.pending:
            resolved += [rid for rid, _ in item.requeues]
        counted = [(a, int(ans)) for a, ans, _ in item.votes if a not in state.excluded]
        closing = item.decision in (None, Decision.pending) and credits(verdict, config)
        if closing and item.gold is None:
            for worker, label, probs in state.credit(item.synset_id, counted):
                changes.credit(worker, label, probs)
            voters = [a for a, _ in counted]
            newly.update(judge(state, config.exclusion, voters, session, sql))
        rows.append(
            {"candidate_id": cid, "p_yes": verdict.probs[1], "decision": decision,
             "method": "dynamic", "n_votes": len(counted), "initial": False,
             "reason": verdict.reason, "updated_at": now}
        )  # fmt: skip
    return rows, resolved, newly


# session.info key: items to decide again once the submit that excluded their voter commits.
REOPEN = "consensus_reopen"


def reopen_deferred(
    session: Session, config: DynamicConfig = DEFAULT, sql: LiveStatements | None = None
) -> None:
    """Decide again, each in a transaction of its own, the items :func:`after_votes`
    left to the next transaction (``defer_reopen``); call after committing."""
    while ids := session.info.pop(REOPEN, None):
        redo = partial(after_votes, session, sorted(ids), config=config, defer_reopen=True, sql=sql)
        committed(session, redo)


def _verdict(item: Item, got: Read, config: DynamicConfig) -> Verdict:
    """The verdict on one item (gold answers are fixed; requeued items wait for fresh votes)."""
    if item.gold is not None:
        p = float(item.gold)
        return Verdict("decided", int(item.gold), (1.0 - p, p))
    state = got.state
    voted = {a for a, _, _ in item.votes}
    # No team (votes imported from a file, say): nobody to wait for or to give up on.
    left = got.team - len(voted & got.active) if got.team else None
    votes = [(a, int(ans)) for a, ans, _ in item.votes]
    verdict = evaluate_item(state, item.synset_id, votes, config=config, initial=item.initial,
                            voters_left=left)  # fmt: skip
    if item.requeues:
        since = min(t for _, t in item.requeues)
        fresh = sum(1 for a, _, t in item.votes if t >= since and a not in state.excluded)
        nobody_left = left is not None and left <= 0
        return after_requeue(verdict, fresh, config, nobody_left=nobody_left)
    return verdict


def _forget_loaded(session: Session, ids: set[int], synset_id: int | None = None) -> None:
    """Expire loaded objects whose rows were written in Core: the Consensus/Requeue
    rows of ``ids``, and the synset whose initial subset was just fixed."""
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Consensus | Requeue) and obj.candidate_id in ids) or (
            isinstance(obj, Synset) and obj.id == synset_id
        ):
            session.expire(obj)
