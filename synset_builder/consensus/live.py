"""Consensus on the request path: what the web app calls in each submit.

Cheap and incremental by design: ``after_votes`` touches only the candidates just
voted on (their votes, their voters' stored skill, their synset's prior from its
initial subset) and never refits anything; ``synset consensus`` does the full
EM refit now and then and rewrites the same rows. The rule is ImageNet's
dynamic consensus (see :mod:`synset_builder.consensus.dynamic`):

* the first time a synset gets a vote, its initial subset is fixed: the
  ``initial_size`` pool candidates with the lowest pseudo-random key (the same
  key :func:`priority_order` serves by, so it is what was being served anyway);
* initial items stay open until they have ``initial_votes`` votes; every other
  item until ``P(yes)`` passes the threshold either way or the cap is hit
  (``undecided``);
* a requeued candidate (unresolved ``requeue`` row) is open again until it has
  ``requeue_votes`` fresh votes and a decision; its requeue row is then resolved.

Decision words: ``accepted``, ``rejected``, ``undecided`` (cap hit), and
``pending`` (still collecting votes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, exists, false, func, literal_column, or_, select
from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.consensus import live_sql as sql
from synset_builder.consensus.dynamic import DynamicConfig, binary_posterior, decide
from synset_builder.consensus.quality import (
    COUNT_KEYS,
    Skill,
    exclusion_reason,
    may_vote,
    skill_of,
)
from synset_builder.db.bulk import rows_params
from synset_builder.db.models import (
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Image,
    Requeue,
    Synset,
)
from synset_builder.db.session import on_postgresql
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
    return (Candidate.id * literal_column("2654435761")) % literal_column("2147483629")


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
    to answer for a page of 24 items (3 ms per vote submit after a minute of load,
    growing with the database). A joined row is read by key instead.
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
           "initial": True, "updated_at": datetime.now(UTC)}  # fmt: skip
    postgresql = on_postgresql(session)
    rows = [{**row, "candidate_id": cid} for cid in ids]
    conn.execute(sql.mark_initial(postgresql), rows_params(rows, sql.CONSENSUS_COLUMNS, postgresql))
    _forget_loaded(session, set(ids), synset_id)
    return True


def _initial_ids(session: Session, synset_id: int) -> list[int] | None:
    return session.connection().execute(sql.initial_ids(), {"synset_id": synset_id}).scalar()


def _smoothed(total: float, n: int) -> float:
    """Share of positives among ``n`` items summing to ``total``, with one pseudo-count each way."""
    return (float(total) + 1.0) / (int(n) + 2.0)


def _credit(session: Session, credits: list[tuple[list[tuple[int, bool]], float]]) -> None:
    """Add finished initial items' soft (truth, vote) counts to their voters' records.

    Two submits may credit one voter at once: the records are created where missing
    without a conflict, then locked in id order before they are read and changed,
    so neither a duplicate insert nor a lost update can happen.
    """
    ids = sorted({a for votes, _ in credits for a, _ in votes})
    if not ids:
        return
    conn = session.connection()
    conn.execute(sql.add_quality_rows(on_postgresql(session)), [{"annotator_id": a} for a in ids])
    rows = {
        q.annotator_id: q
        for q in session.scalars(
            select(AnnotatorQuality)
            .where(AnnotatorQuality.annotator_id.in_(ids))
            .order_by(AnnotatorQuality.annotator_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    for votes, p_yes in credits:
        for annotator, answer in votes:
            row = rows[annotator]
            counts = {key: float((row.counts or {}).get(key, 0.0)) for key in COUNT_KEYS}
            counts["yy" if answer else "yn"] += p_yes
            counts["ny" if answer else "nn"] += 1.0 - p_yes
            row.counts = counts
            row.votes = (row.votes or 0) + 1


@dataclass
class _Item:
    """What one candidate's update reads: its synset, gold answer, state and votes."""

    synset_id: int
    gold: bool | None
    initial: bool
    was_decided: bool
    votes: list[tuple[int, bool, datetime]] = field(default_factory=list)
    requeues: list[tuple[int, datetime]] = field(default_factory=list)


def _read_items(
    session: Session, ids: list[int], config: DynamicConfig
) -> tuple[dict[int, _Item], dict[int, float], dict[int, Skill]]:
    """The items with their votes and requeues, the prior of each of their synsets,
    and the skill of each of their voters.

    Fixes initial subsets first where a synset has none yet: only a synset's very
    first submit (which fixes the subset) reads the items twice.
    """
    conn = session.connection()
    postgresql = on_postgresql(session)
    Read = tuple[dict[int, _Item], dict[int, list[int] | None], dict[int, Skill], bool]

    def read() -> Read:
        items: dict[int, _Item] = {}
        subsets: dict[int, list[int] | None] = {}
        skills: dict[int, Skill] = {}
        requeued = False
        for row in conn.execute(sql.items_votes(postgresql), {"ids": ids}):
            cid, sid, initial_ids, gold, initial, decision, req, voter, answer, at = row[:10]
            item = items.get(cid)
            if item is None:
                item = items[cid] = _Item(sid, gold, bool(initial), decision in DECIDED)
                if sid not in subsets:
                    subsets[sid] = json.loads(initial_ids) if initial_ids else None
                requeued = requeued or bool(req)
            if voter is None:
                continue
            item.votes.append((voter, answer, _utc(at)))
            if voter not in skills:
                counts, excluded, *tally = row[10:]
                stored = json.loads(counts) if counts else None
                gold_counts = dict(zip(COUNT_KEYS, (t or 0 for t in tally), strict=True))
                skills[voter] = skill_of(stored, excluded, gold_counts, shrink=config.shrink)
        return items, subsets, skills, requeued

    items, subsets, skills, requeued = read()
    if any(
        ensure_initial_subset(session, sid, config)
        for sid, subset in sorted(subsets.items())
        if subset is None
    ):
        items, subsets, skills, requeued = read()
    if requeued:
        for rid, cid, created in conn.execute(sql.open_requeues(postgresql), {"ids": ids}):
            items[cid].requeues.append((rid, _utc(created)))
    priors: dict[int, float] = {}
    for sid, subset in subsets.items():
        total, n = 0.0, 0
        if subset:
            params = {"initial_ids": subset, "initial_votes": config.initial_votes}
            total, n = conn.execute(sql.prior(postgresql), params).one()
        priors[sid] = _smoothed(total, n)
    return items, priors, skills


def after_votes(
    session: Session, candidate_ids: Sequence[int], *, config: DynamicConfig = DEFAULT
) -> None:
    """Update the Consensus rows of the candidates just voted on, in the caller's transaction."""
    ids = sorted(set(candidate_ids))
    if not ids:
        return
    session.flush()
    items, priors, skills = _read_items(session, ids, config)
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    resolved: list[int] = []
    credits: list[tuple[list[tuple[int, bool]], float]] = []
    for cid, item in items.items():
        counted = [(a, ans, t) for a, ans, t in item.votes if not skills[a].excluded]
        p_yes, decision = _decide(item, counted, skills, priors[item.synset_id], config)
        if item.requeues and item.gold is None and decision != "pending":
            resolved += [rid for rid, _ in item.requeues]
        rows.append(
            {"candidate_id": cid, "p_yes": p_yes, "decision": decision, "method": "dynamic",
             "n_votes": len(counted), "initial": False, "updated_at": now}
        )  # fmt: skip
        # Only a finished initial item measures its voters: items stopped early by
        # agreement (or run to the cap by disagreement) are a biased sample.
        if item.initial and decision != "pending" and not item.was_decided and item.gold is None:
            credits.append(([(a, ans) for a, ans, _ in counted], p_yes))
    postgresql = on_postgresql(session)
    conn = session.connection()
    conn.execute(
        sql.upsert_consensus(postgresql), rows_params(rows, sql.CONSENSUS_COLUMNS, postgresql)
    )
    if resolved:
        conn.execute(sql.resolve_requeues(postgresql), {"ids": resolved, "now": now})
    _forget_loaded(session, set(ids))
    _credit(session, credits)
    session.flush()


def _decide(
    item: _Item,
    counted: list[tuple[int, bool, datetime]],
    skills: dict[int, Skill],
    prior: float,
    config: DynamicConfig,
) -> tuple[float, str]:
    """``P(yes)`` and the decision word for one item (gold answers are fixed)."""
    if item.gold is not None:
        return float(item.gold), "accepted" if item.gold else "rejected"
    p_yes = binary_posterior(
        prior, [(ans, skills[a].sensitivity, skills[a].specificity) for a, ans, _ in counted]
    )
    decision = decide(p_yes, len(counted), initial=item.initial, config=config)
    if item.requeues:
        since = min(t for _, t in item.requeues)
        fresh = sum(1 for _, _, t in counted if t >= since)
        if fresh < config.requeue_votes:
            decision = "pending"
    return p_yes, decision


def _forget_loaded(session: Session, ids: set[int], synset_id: int | None = None) -> None:
    """Expire loaded objects whose rows were written in Core: the Consensus/Requeue
    rows of ``ids``, and the synset whose initial subset was just fixed."""
    for obj in list(session.identity_map.values()):
        if (isinstance(obj, Consensus | Requeue) and obj.candidate_id in ids) or (
            isinstance(obj, Synset) and obj.id == synset_id
        ):
            session.expire(obj)
