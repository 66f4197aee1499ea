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

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, case, exists, func, literal_column, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.consensus.dynamic import DynamicConfig, binary_posterior, decide
from synset_builder.consensus.quality import (
    COUNT_KEYS,
    Skill,
    annotator_skills,
    exclusion_reason,
    may_vote,
)
from synset_builder.db.models import (
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Image,
    Requeue,
    Vote,
)
from synset_builder.pool import clean_clause

__all__ = [
    "after_votes",
    "config_from",
    "exclusion_reason",
    "may_vote",
    "open_clause",
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
    decided = exists().where(
        Consensus.candidate_id == Candidate.id, Consensus.decision.in_(DECIDED)
    )
    return or_(~decided, _requeued())


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


def ensure_initial_subset(session: Session, synset_id: int, config: DynamicConfig) -> None:
    """Fix a synset's initial subset once, from the pool, in the order items are served."""
    # The synset filter sits inside EXISTS: outside it, the EXISTS was correlated to
    # every candidate row and only the first row was looked at, so the subset was
    # re-picked (an ordered scan of the whole synset) on most submits.
    if config.initial_size == 0 or session.scalar(
        select(
            exists().where(
                Consensus.initial,
                Consensus.candidate_id == Candidate.id,
                Candidate.synset_id == synset_id,
            )
        )
    ):
        return
    picks = session.scalars(
        select(Candidate.id)
        .join(Image, Image.id == Candidate.image_id)
        .where(Candidate.synset_id == synset_id, clean_clause())
        .where(~exists().where(Gold.candidate_id == Candidate.id))
        .order_by(serve_key(), Candidate.id)
        .limit(config.initial_size)
    ).all()
    existing = {
        row.candidate_id: row
        for row in session.scalars(select(Consensus).where(Consensus.candidate_id.in_(picks)))
    }
    try:
        with session.begin_nested():
            for cid in picks:
                row = existing.get(cid)
                if row is None:
                    session.add(
                        Consensus(
                            candidate_id=cid,
                            p_yes=0.5,
                            decision="pending",
                            method="dynamic",
                            n_votes=0,
                            initial=True,
                        )
                    )
                else:
                    row.initial = True
    except IntegrityError:  # another submit fixed the subset at the same moment
        pass


def synset_prior(session: Session, synset_id: int, config: DynamicConfig) -> float:
    """Share of positives in the synset, from its fully voted initial items (smoothed)."""
    total, n = session.execute(
        select(func.coalesce(func.sum(Consensus.p_yes), 0.0), func.count())
        .join(Candidate, Candidate.id == Consensus.candidate_id)
        .where(
            Candidate.synset_id == synset_id,
            Consensus.initial,
            Consensus.n_votes >= config.initial_votes,
        )
    ).one()
    return (float(total) + 1.0) / (int(n) + 2.0)


def _credit(session: Session, votes: list[tuple[int, bool]], p_yes: float) -> None:
    """Add a finished initial item's soft (truth, vote) counts to its voters' records."""
    ids = sorted({a for a, _ in votes})
    rows = {
        q.annotator_id: q
        for q in session.scalars(
            select(AnnotatorQuality).where(AnnotatorQuality.annotator_id.in_(ids))
        )
    }
    for annotator, answer in votes:
        row = rows.get(annotator)
        if row is None:
            row = AnnotatorQuality(
                annotator_id=annotator, votes=0, gold_total=0, gold_correct=0, counts={}
            )
            session.add(row)
            rows[annotator] = row
        counts = {key: float((row.counts or {}).get(key, 0.0)) for key in COUNT_KEYS}
        counts["yy" if answer else "yn"] += p_yes
        counts["ny" if answer else "nn"] += 1.0 - p_yes
        row.counts = counts
        row.votes = (row.votes or 0) + 1


def after_votes(
    session: Session, candidate_ids: Sequence[int], *, config: DynamicConfig = DEFAULT
) -> None:
    """Update the Consensus rows of the candidates just voted on, in the caller's transaction."""
    ids = sorted(set(candidate_ids))
    if not ids:
        return
    cands = session.execute(
        select(Candidate.id, Candidate.synset_id).where(Candidate.id.in_(ids))
    ).all()
    for sid in sorted({sid for _, sid in cands}):
        ensure_initial_subset(session, sid, config)
    priors = {sid: synset_prior(session, sid, config) for sid in {sid for _, sid in cands}}
    rows = {
        row.candidate_id: row
        for row in session.scalars(select(Consensus).where(Consensus.candidate_id.in_(ids)))
    }
    votes: dict[int, list[tuple[int, bool, datetime]]] = {cid: [] for cid in ids}
    for cid, annotator, answer, created in session.execute(
        select(Vote.candidate_id, Vote.annotator_id, Vote.answer, Vote.created_at).where(
            Vote.candidate_id.in_(ids)
        )
    ):
        votes[cid].append((annotator, answer, _utc(created)))
    gold: dict[int, bool] = {
        cid: answer
        for cid, answer in session.execute(
            select(Gold.candidate_id, Gold.answer).where(Gold.candidate_id.in_(ids))
        )
    }
    requeues: dict[int, list[Requeue]] = {}
    for rq in session.scalars(
        select(Requeue).where(Requeue.candidate_id.in_(ids), Requeue.resolved_at.is_(None))
    ):
        requeues.setdefault(rq.candidate_id, []).append(rq)
    skills = annotator_skills(
        session, {a for vs in votes.values() for a, _, _ in vs}, shrink=config.shrink
    )
    for cid, sid in cands:
        row = rows.get(cid)
        was_decided = row is not None and row.decision in DECIDED
        _update(
            session,
            cid,
            row,
            item_votes=votes[cid],
            skills=skills,
            prior=priors[sid],
            gold_answer=gold.get(cid),
            requeues=requeues.get(cid, []),
            config=config,
            was_decided=was_decided,
        )
    session.flush()


def _update(
    session: Session,
    cid: int,
    row: Consensus | None,
    *,
    item_votes: list[tuple[int, bool, datetime]],
    skills: dict[int, Skill],
    prior: float,
    gold_answer: bool | None,
    requeues: list[Requeue],
    config: DynamicConfig,
    was_decided: bool,
) -> None:
    counted = [(a, ans, t) for a, ans, t in item_votes if not skills[a].excluded]
    p_yes = binary_posterior(
        prior, [(ans, skills[a].sensitivity, skills[a].specificity) for a, ans, _ in counted]
    )
    initial = bool(row and row.initial)
    n = len(counted)
    if gold_answer is not None:
        p_yes, decision = float(gold_answer), "accepted" if gold_answer else "rejected"
    else:
        decision = decide(p_yes, n, initial=initial, config=config)
    if requeues and gold_answer is None:
        since = min(_utc(rq.created_at) for rq in requeues)
        fresh = sum(1 for _, _, t in counted if t >= since)
        if fresh < config.requeue_votes:
            decision = "pending"
        elif decision != "pending":
            now = datetime.now(UTC)
            for rq in requeues:
                rq.resolved_at = now
    if row is None:
        row = Consensus(candidate_id=cid, initial=False)
        session.add(row)
    row.p_yes, row.decision, row.method, row.n_votes = p_yes, decision, "dynamic", n
    # Only a finished initial item measures its voters: items stopped early by
    # agreement (or run to the cap by disagreement) are a biased sample.
    if initial and decision != "pending" and not was_decided and gold_answer is None:
        _credit(session, [(a, ans) for a, ans, _ in counted], p_yes)
