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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import ColumnElement, case, exists, false, func, literal_column, or_, select
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.config import Settings
from synset_builder.consensus import live_sql as sql
from synset_builder.consensus.dynamic import (
    DynamicConfig,
    Verdict,
    after_requeue,
    credits,
    evaluate_item,
)
from synset_builder.consensus.model import ExclusionRule, SkillState
from synset_builder.consensus.quality import COUNT_KEYS, exclusion_reason, may_vote
from synset_builder.db.bulk import rows_params
from synset_builder.db.models import (
    SERVE_KEY_MULTIPLIER,
    SERVE_KEY_RANGE,
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Image,
    Requeue,
    Synset,
    Vote,
)
from synset_builder.db.session import committed, on_postgresql
from synset_builder.pool import clean_clause

__all__ = [
    "after_votes",
    "config_from",
    "exclusion_reason",
    "may_vote",
    "open_clause",
    "open_joined",
    "priority_order",
    "serve_key",
]

DEFAULT = DynamicConfig()


def config_from(settings: Settings) -> DynamicConfig:
    """The stopping rule from the settings: the web app and ``synset consensus`` share it."""
    return DynamicConfig(
        threshold=settings.consensus_threshold,
        max_votes=settings.consensus_max_votes,
        initial_size=settings.consensus_initial_size,
        initial_votes=settings.consensus_initial_votes,
        shrink=settings.consensus_shrink,
        newcomer_skill=settings.consensus_newcomer_skill,
        skill_floor=settings.consensus_skill_floor,
        exclusion_votes=settings.consensus_exclusion_votes,
        requeue_votes=settings.consensus_requeue_votes,
    )


DECIDED = ("accepted", "rejected", "undecided")


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


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def ensure_initial_subset(session: Session, synset_id: int, config: DynamicConfig) -> bool:
    """Fix a synset's initial subset once, from the pool, in the order items are served.

    True when this call fixed it (so rows read before it may be stale).
    """
    if config.initial_size == 0 or _initial_ids(session, synset_id) is not None:
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
    conn = session.connection()
    fixed = conn.execute(sql.fix_initial_ids(), {"synset_id": synset_id, "initial_ids": ids})
    if fixed.first() is None:
        return False
    # Sorted by id, like every consensus write, so concurrent writers lock in one order.
    row = {"p_yes": 0.5, "decision": "pending", "method": "dynamic", "n_votes": 0,
           "initial": True, "reason": None, "updated_at": datetime.now(UTC)}  # fmt: skip
    postgresql = on_postgresql(session)
    rows = [{**row, "candidate_id": cid} for cid in ids]
    conn.execute(sql.mark_initial(postgresql), rows_params(rows, sql.CONSENSUS_COLUMNS, postgresql))
    _forget_loaded(session, set(ids), synset_id)
    return True


def _initial_ids(session: Session, synset_id: int) -> list[int] | None:
    return session.connection().execute(sql.initial_ids(), {"synset_id": synset_id}).scalar()


@dataclass
class _Item:
    """What one candidate's update reads: its synset, gold answer, state and votes."""

    synset_id: int
    gold: bool | None
    initial: bool
    decision: str | None
    votes: list[tuple[int, bool, datetime]] = field(default_factory=list)
    requeues: list[tuple[int, datetime]] = field(default_factory=list)


@dataclass
class _Read:
    items: dict[int, _Item]
    state: SkillState
    active: set[int]  # voters of these items who could vote again elsewhere
    team: int  # annotators who can be served anything at all
    ledger_rows: int = 0  # the voters' unfolded annotator_tally_delta rows


def _matrix(counts: Mapping[str, float] | None) -> list[list[float]]:
    """``{"yy", "yn", "ny", "nn"}`` (truth, vote) as a 2 x 2 matrix, index 0 = no."""
    c = counts or {}
    return [[c.get("nn", 0.0), c.get("ny", 0.0)], [c.get("yn", 0.0), c.get("yy", 0.0)]]


def _read_items(session: Session, ids: list[int], config: DynamicConfig) -> _Read:
    """The items with their votes and requeues, each synset's prior, and each voter's
    record, as a :class:`SkillState` (the model every path decides with).

    Fixes initial subsets first where a synset has none yet: only a synset's very
    first submit (which fixes the subset) reads the items twice.
    """
    conn = session.connection()
    postgresql = on_postgresql(session)

    def read() -> tuple[_Read, dict[int, list[int] | None], bool]:
        items: dict[int, _Item] = {}
        subsets: dict[int, list[int] | None] = {}
        state = SkillState(k=2, skill=config.newcomer_skill, shrink=config.shrink)
        active: set[int] = set()
        seen: set[int] = set()
        requeued = False
        team = kept = 0
        for row in conn.execute(sql.items_votes(postgresql), {"ids": ids}):
            cid, sid, initial_ids, prior_yes, gold, initial, decision, req, team = row[:9]
            voter, answer, at, can_vote = row[9:13]
            counts = row[13:19]  # nn, ny, yn, yy, answered no, answered yes
            excluded, reason, *matrix, ledger_rows = row[19:]
            item = items.get(cid)
            if item is None:
                item = items[cid] = _Item(sid, gold, bool(initial), decision)
                if sid not in subsets:
                    subsets[sid] = json.loads(initial_ids) if initial_ids else None
                    if prior_yes is not None:
                        state.priors[sid] = [1.0 - prior_yes, prior_yes]
                requeued = requeued or bool(req)
            if voter is None:
                continue
            item.votes.append((voter, answer, _utc(at)))
            if voter in seen:
                continue
            seen.add(voter)
            kept += int(ledger_rows or 0)
            nn, ny, yn, yy, said_no, said_yes = (float(c or 0.0) for c in counts)
            state.counts[voter] = [[nn, ny], [yn, yy]]
            gold_counts = dict(zip(COUNT_KEYS, (t or 0 for t in matrix), strict=True))
            state.gold_counts[voter] = _matrix(gold_counts)
            state.answers[voter] = [said_no, said_yes]
            if excluded:
                state.excluded[voter] = reason or "excluded"
            elif can_vote:
                active.add(voter)
        return _Read(items, state, active, team, kept), subsets, requeued

    got, subsets, requeued = read()
    if any(
        ensure_initial_subset(session, sid, config)
        for sid, subset in sorted(subsets.items())
        if subset is None
    ):
        got, subsets, requeued = read()
    if requeued:
        for rid, cid, created in conn.execute(sql.open_requeues(postgresql), {"ids": ids}):
            got.items[cid].requeues.append((rid, _utc(created)))
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
) -> None:
    """Update the Consensus rows of the candidates just voted on, in the caller's transaction.

    ``voter``: who submitted these votes (the web app's submit); their answers
    count toward the always-the-same-answer check. Annotators the exclusion rule
    catches here are excluded at once, and every item they voted on is decided
    again without them: in this transaction, or with ``defer_reopen`` in the next
    one (:func:`reopen_deferred`, after the caller commits). The web app defers:
    then every transaction writes consensus rows before voters' records, one lock
    order, where deciding again here would write consensus rows after the records
    and deadlock with concurrent submits on PostgreSQL.
    """
    ids = sorted(set(candidate_ids))
    if not ids:
        return
    session.flush()
    got = _read_items(session, ids, config)
    state, rule = got.state, config.exclusion
    changes = _Changes()
    judged: list[int] = []
    if voter is not None and voter in state.answers:
        for item in got.items.values():
            for a, answer, _ in item.votes:
                if a == voter and state.answered(voter, int(answer)):
                    changes.answer(voter, int(answer))
                    judged = [voter]
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    resolved: list[int] = []
    newly: dict[int, str] = {}
    for cid, item in got.items.items():
        verdict = _verdict(item, got, config)
        decision = verdict.decision
        if item.requeues and item.gold is None and decision != "pending":
            resolved += [rid for rid, _ in item.requeues]
        counted = [(a, int(ans)) for a, ans, _ in item.votes if a not in state.excluded]
        closing = item.decision in (None, "pending") and credits(verdict, config)
        if closing and item.gold is None:
            for worker, label, probs in state.credit(item.synset_id, counted):
                changes.credit(worker, label, probs)
            newly.update(_judge(state, rule, [a for a, _ in counted], session))
        rows.append(
            {"candidate_id": cid, "p_yes": verdict.probs[1], "decision": decision,
             "method": "dynamic", "n_votes": len(counted), "initial": False,
             "reason": verdict.reason, "updated_at": now}
        )  # fmt: skip
    newly.update(_judge(state, rule, judged, session))
    postgresql = on_postgresql(session)
    conn = session.connection()
    conn.execute(
        sql.upsert_consensus(postgresql), rows_params(rows, sql.CONSENSUS_COLUMNS, postgresql)
    )
    if resolved:
        conn.execute(sql.resolve_requeues(postgresql), {"ids": resolved, "now": now})
    _forget_loaded(session, set(ids))
    _save_records(session, changes, newly)
    session.flush()
    if newly:
        again = session.scalars(
            select(Vote.candidate_id).where(Vote.annotator_id.in_(sorted(newly)))
        ).all()
        if defer_reopen:
            session.info.setdefault(REOPEN, set()).update(again)
        else:
            after_votes(session, list(again), config=config)


# session.info key: items to decide again once the submit that excluded their voter commits.
REOPEN = "consensus_reopen"


def reopen_deferred(session: Session, config: DynamicConfig = DEFAULT) -> None:
    """Decide again, each in a transaction of its own, the items :func:`after_votes`
    left to the next transaction (``defer_reopen``); call after committing."""
    while ids := session.info.pop(REOPEN, None):
        redo = partial(after_votes, session, sorted(ids), config=config, defer_reopen=True)
        committed(session, redo)


def _verdict(item: _Item, got: _Read, config: DynamicConfig) -> Verdict:
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


def _judge(
    state: SkillState, rule: ExclusionRule, workers: Sequence[int], session: Session
) -> dict[int, str]:
    """The workers the exclusion rule catches now, with the reason."""

    def others(worker: int) -> list[float]:
        no, yes = session.connection().execute(sql.others_answers(), {"me": worker}).one()
        return [float(no or 0), float(yes or 0)]

    out = {}
    for w in dict.fromkeys(workers):
        reason = state.judge(w, rule, others)
        if reason is not None:
            out[w] = reason
    return out


@dataclass
class _Changes:
    """What this update adds to voters' records (credited counts, answers), per annotator."""

    counts: dict[int, dict[str, float]] = field(default_factory=dict)

    def _of(self, worker: int) -> dict[str, float]:
        keys = (*sql.RECORD_COLUMNS, "votes")
        return self.counts.setdefault(worker, dict.fromkeys(keys, 0.0))

    def of(self, worker: int) -> dict[str, float]:
        """The additions for ``worker`` (zeros if none), as record columns."""
        got = self.counts.get(worker) or dict.fromkeys((*sql.RECORD_COLUMNS, "votes"), 0.0)
        return {**got, "votes": int(got["votes"])}

    def credit(self, worker: int, label: int, probs: Sequence[float]) -> None:
        row = self._of(worker)
        row["nn" if label == 0 else "ny"] += probs[0]
        row["yn" if label == 0 else "yy"] += probs[1]

    def answer(self, worker: int, label: int) -> None:
        row = self._of(worker)
        row["answered_yes" if label else "answered_no"] += 1.0
        row["votes"] += 1


def _save_records(session: Session, changes: _Changes, newly: Mapping[int, str]) -> None:
    """Add this update's credits and answers to the voters' records; record exclusions.

    Only records that changed are touched: most submits change few (answers are
    counted over an annotator's first votes only, credits come with closing items).
    Missing records are created without a conflict, then each changed one gets one
    increment, in id order (so concurrent submits lock them in one order, and
    neither loses the other's count).
    """
    ids = sorted(set(changes.counts) | set(newly))
    if not ids:
        return
    conn = session.connection()
    postgresql = on_postgresql(session)
    now = datetime.now(UTC)
    blank = {"gold_total": 0, "gold_correct": 0, "sensitivity": 0.5, "specificity": 0.5,
             "excluded": False, "updated_at": now}  # fmt: skip
    rows = [{"annotator_id": a, **blank, **changes.of(a)} for a in ids]
    conn.execute(sql.add_to_records(postgresql), rows_params(rows, sql.RECORD_ROW, postgresql))
    if newly:
        conn.execute(
            sql.exclude_annotator(), [{"aid": a, "reason": newly[a]} for a in sorted(newly)]
        )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, AnnotatorQuality) and obj.annotator_id in ids:
            session.expire(obj)


def _forget_loaded(session: Session, ids: set[int], synset_id: int | None = None) -> None:
    """Expire loaded objects whose rows were written in Core: the Consensus/Requeue
    rows of ``ids``, and the synset whose initial subset was just fixed."""
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Consensus | Requeue) and obj.candidate_id in ids) or (
            isinstance(obj, Synset) and obj.id == synset_id
        ):
            session.expire(obj)
