"""Task pages: picking a synset, leasing items, recording votes and reports.

Shared by the HTML pages and the JSON API. Leases are rows of ``lease`` (one per
candidate, primary key = candidate). Taking an item is a conditional upsert that
only succeeds when the row is new, expired or already ours, so two annotators can
never hold one item, on either backend. PostgreSQL additionally locks the
candidate rows it is about to lease with ``FOR UPDATE SKIP LOCKED``, so concurrent
requests pick different items instead of queueing behind one another.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from annotator_web import queue
from synset_builder.config import Settings
from synset_builder.consensus import live
from synset_builder.db.models import (
    Annotator,
    Candidate,
    Consensus,
    Gold,
    Image,
    Lease,
    Synset,
    SynsetEdge,
    Unsure,
    Vote,
)
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.pool import clean_clause

# Picks lost to a concurrent request are replaced by new picks this many times at most.
RACE_RETRIES = 5
# live.serve_key() values lie in [0, SERVE_KEY_RANGE).
SERVE_KEY_RANGE = 2147483629


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TaskItem:
    candidate_id: int
    image_id: int

    @property
    def image_url(self) -> str:
        return f"/img/{self.image_id}/thumb"


@dataclass(frozen=True)
class Task:
    """One page of work; ``items`` is empty when nothing is left for this annotator."""

    synset: Synset | None
    items: list[TaskItem] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)
    # Set when consensus stopped counting this annotator's votes (nothing is served).
    excluded: str | None = None


@dataclass(frozen=True)
class VoteResult:
    accepted: int
    already: int
    refused: list[int]


def _available_to(annotator_id: int, now: datetime) -> list[ColumnElement[bool]]:
    """In the pool, not yet answered or skipped by this annotator, not held by anyone else."""
    return [
        clean_clause(),
        ~exists().where(Vote.candidate_id == Candidate.id, Vote.annotator_id == annotator_id),
        ~exists().where(Unsure.candidate_id == Candidate.id, Unsure.annotator_id == annotator_id),
        ~exists().where(
            Lease.candidate_id == Candidate.id,
            Lease.expires_at > now,
            Lease.annotator_id != annotator_id,
        ),
    ]


def _under_goal() -> ColumnElement[bool]:
    accepted = (
        select(func.count())
        .select_from(Consensus)
        .join(Candidate, Candidate.id == Consensus.candidate_id)
        .where(Candidate.synset_id == Synset.id, Consensus.decision == "accepted")
        .scalar_subquery()
    )
    return and_(Synset.target.is_(True), accepted < Synset.goal)


def below_goal(session: Session, synset: Synset) -> bool:
    """``_under_goal()`` for one synset, cheaply: a synset with fewer candidates than its
    goal cannot have reached it, so the accepted count (a join) is only needed near it."""
    if not synset.target or synset.goal is None:
        return False
    total = session.scalar(
        select(func.count()).select_from(Candidate).where(Candidate.synset_id == synset.id)
    )
    if (total or 0) < synset.goal:
        return True
    return bool(session.scalar(select(exists().where(Synset.id == synset.id, _under_goal()))))


def _take(session: Session, ids: Sequence[int], annotator_id: int, cfg: Settings) -> list[int]:
    """Lease ``ids`` to the annotator where nobody else holds them; the ids obtained."""
    if not ids:
        return []
    now = now_utc()
    expires = now + timedelta(seconds=cfg.web_lease_seconds)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Lease).values(
        [{"candidate_id": i, "annotator_id": annotator_id, "expires_at": expires} for i in ids]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Lease.candidate_id],
        set_={"annotator_id": stmt.excluded.annotator_id, "expires_at": stmt.excluded.expires_at},
        where=(Lease.expires_at <= now) | (Lease.annotator_id == annotator_id),
    ).returning(Lease.candidate_id)
    return list(session.scalars(stmt))


def _lease_new(
    session: Session, *, synset_id: int, annotator_id: int, n: int, gold: bool, cfg: Settings
) -> list[int]:
    """Lease up to ``n`` fresh items; losing a race for some just means picking again."""
    taken: list[int] = []
    # Before the first submit fixes the initial subset, serve from the lowest keys:
    # those are the items the subset will be made of (live.ensure_initial_subset).
    start = 0
    if not gold and queue.has_initial_subset(session, synset_id):
        start = random.randrange(SERVE_KEY_RANGE)
    for _ in range(RACE_RETRIES):
        if len(taken) >= n:
            break
        want = n - len(taken)
        if gold:
            picks = _pick_gold(session, synset_id, annotator_id, want, taken)
        else:
            picks = _pick_fresh(session, synset_id, annotator_id, want, taken, start)
        if not picks:
            break
        taken += _take(session, picks, annotator_id, cfg)
    return taken


def _candidates(
    session: Session, synset_id: int, annotator_id: int, skip: Sequence[int]
) -> Select[tuple[int]]:
    """Candidates of the synset this annotator may be served now (not yet ordered)."""
    stmt = (
        select(Candidate.id)
        .join(Image, Image.id == Candidate.image_id)
        .where(Candidate.synset_id == synset_id, *_available_to(annotator_id, now_utc()))
    )
    if skip:
        stmt = stmt.where(Candidate.id.not_in(skip))
    return stmt


def _locked(session: Session, stmt: Select[tuple[int]]) -> Select[tuple[int]]:
    """PostgreSQL: lock the picks, skipping rows a concurrent request is leasing."""
    if session.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(of=Candidate, skip_locked=True)
    return stmt


def _pick_gold(
    session: Session, synset_id: int, annotator_id: int, n: int, skip: Sequence[int]
) -> list[int]:
    """Gold items in random order (joined from the small gold table, no synset scan)."""
    stmt = (
        _candidates(session, synset_id, annotator_id, skip)
        .join(Gold, Gold.candidate_id == Candidate.id)
        .order_by(func.random())
        .limit(n)
    )
    return list(session.scalars(_locked(session, stmt)))


def _pick_fresh(
    session: Session,
    synset_id: int,
    annotator_id: int,
    n: int,
    skip: Sequence[int],
    start: int,
) -> list[int]:
    """Up to ``n`` open items in consensus priority order, read tier by tier.

    Equivalent to ordering by ``queue.priority_order()``, except that the last
    tier (the bulk of the synset) is walked from ``start`` and wraps around, so
    concurrent annotators begin at different places instead of all stepping over
    the same leased and decided items at the front of the key order.
    """
    base = _candidates(session, synset_id, annotator_id, skip).where(
        ~exists().where(Gold.candidate_id == Candidate.id)
    )
    key = queue.serve_key()
    *first, rest = queue.serving_tiers()
    # The small tiers are usually empty: a cheap probe (no availability filters)
    # saves planning and running the full query for them on most fetches.
    queries = [
        base.where(tier)
        for tier in first
        if session.scalar(select(exists().where(Candidate.synset_id == synset_id, tier)))
    ]
    queries += [base.where(rest, key >= start), base.where(rest, key < start)]
    picks: list[int] = []
    for stmt in queries:
        if len(picks) >= n:
            break
        if picks:
            stmt = stmt.where(Candidate.id.not_in(picks))
        stmt = stmt.order_by(key, Candidate.id).limit(n - len(picks))
        picks += session.scalars(_locked(session, stmt))
    return picks


def synset_path(session: Session, synset: Synset, depth: int = 4) -> list[str]:
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
        .where(Candidate.synset_id == synset_id, Consensus.decision == "accepted", clean_clause())
        .order_by(Consensus.p_yes.desc(), Candidate.id)
        .limit(n)
    )
    return list(session.scalars(stmt))


def _synset_order(session: Session, annotator_id: int) -> list[Synset]:
    """Target synsets: the annotator's current one first, then shuffled.

    Staying on one synset keeps the annotator's mental model; shuffling the rest
    spreads many annotators over many synsets, so they rarely contend for items.
    """
    # The goal is checked per synset as it comes up (next_task): counting the accepted
    # items of every synset on every fetch was the most expensive query of a fetch.
    synsets = list(session.scalars(select(Synset).where(Synset.target.is_(True))))
    random.shuffle(synsets)
    last = session.scalar(
        select(Candidate.synset_id)
        .join(Lease, Lease.candidate_id == Candidate.id)
        .where(Lease.annotator_id == annotator_id)
        .order_by(Lease.expires_at.desc())
        .limit(1)
    )
    synsets.sort(key=lambda s: s.id != last)
    return synsets


def next_task(
    session: Session,
    *,
    annotator: Annotator,
    n: int,
    wnid: str | None,
    cfg: Settings,
    decorate: bool = True,
) -> Task:
    """Lease up to ``n`` items of one synset (gold mixed in unseen) to the annotator.

    ``wnid`` pins the synset; otherwise the server picks one that still needs votes.
    ``decorate`` adds what only the HTML page shows (path, accepted examples).
    """
    excluded = queue.exclusion_reason(session, annotator.id)
    if excluded is not None:
        return Task(synset=None, excluded=excluded)
    if wnid is not None:
        synset = session.scalar(select(Synset).where(Synset.wnid == wnid))
        if synset is None:
            raise NotFound(f"Unknown synset {wnid!r}.")
        if not below_goal(session, synset):
            return Task(synset=synset, path=synset_path(session, synset))
        choices = [synset]
    else:
        choices = _synset_order(session, annotator.id)
    for synset in choices:
        if wnid is None and not below_goal(session, synset):
            continue
        ids = _fill(session, synset_id=synset.id, annotator_id=annotator.id, n=n, cfg=cfg)
        if ids or wnid is not None:
            break
    else:
        return Task(synset=None)
    images = dict(
        session.execute(select(Candidate.id, Candidate.image_id).where(Candidate.id.in_(ids))).all()
    )
    return Task(
        synset=synset,
        items=[TaskItem(candidate_id=i, image_id=images[i]) for i in ids],
        path=synset_path(session, synset) if decorate else [],
        examples=accepted_examples(session, synset.id) if decorate else [],
    )


def _fill(
    session: Session, *, synset_id: int, annotator_id: int, n: int, cfg: Settings
) -> list[int]:
    """The ids of one page, shuffled: items already held (a reload), gold, fresh items."""
    held = list(
        session.scalars(
            select(Candidate.id)
            .join(Lease, Lease.candidate_id == Candidate.id)
            .join(Image, Image.id == Candidate.image_id)
            .where(
                clean_clause(),
                queue.open_clause() | exists().where(Gold.candidate_id == Candidate.id),
                Candidate.synset_id == synset_id,
                Lease.annotator_id == annotator_id,
                Lease.expires_at > now_utc(),
                ~exists().where(
                    Vote.candidate_id == Candidate.id, Vote.annotator_id == annotator_id
                ),
                ~exists().where(
                    Unsure.candidate_id == Candidate.id, Unsure.annotator_id == annotator_id
                ),
            )
            .order_by(Candidate.id)
            .limit(n)
        )
    )
    held = _take(session, held, annotator_id, cfg)  # extends their expiry
    want = n - len(held)
    n_gold = int(want * cfg.web_gold_fraction + random.random())
    args = {"synset_id": synset_id, "annotator_id": annotator_id, "cfg": cfg}
    gold = _lease_new(session, n=n_gold, gold=True, **args)
    fresh = _lease_new(session, n=want - len(gold), gold=False, **args)
    if gold and not fresh and not held:
        # Gold alone is not a task: nothing real is left here, give the gold back.
        session.execute(
            update(Lease).where(Lease.candidate_id.in_(gold)).values(expires_at=now_utc())
        )
        gold = []
    ids = held + gold + fresh
    random.shuffle(ids)
    return ids


def record_votes(
    session: Session,
    *,
    annotator: Annotator,
    votes: Sequence[tuple[int, bool]],
    unsure: Sequence[int] = (),
    elapsed_ms: int | None = None,
    cfg: Settings,
) -> VoteResult:
    """Record the answers of one page; harmless to repeat (back button, retry).

    A vote counts only for an item leased to this annotator that still needs votes
    (gold items always do); anything else is refused and nothing is written for it.
    """
    answers = dict(votes)
    ids = sorted(set(answers) | set(unsure))
    if len(ids) > 1000:
        raise InvalidInput("At most 1000 votes per request.")
    if not ids:
        return VoteResult(accepted=0, already=0, refused=[])
    me = annotator.id
    held = set(
        session.scalars(
            select(Lease.candidate_id).where(Lease.candidate_id.in_(ids), Lease.annotator_id == me)
        )
    )
    done = set(
        session.scalars(
            select(Vote.candidate_id).where(Vote.candidate_id.in_(ids), Vote.annotator_id == me)
        )
    )
    votable = set(
        session.scalars(
            select(Candidate.id).where(
                Candidate.id.in_(ids),
                queue.open_clause() | exists().where(Gold.candidate_id == Candidate.id),
            )
        )
    )
    fresh = [i for i in ids if i in answers and i in held and i in votable and i not in done]
    skipped = [i for i in ids if i not in answers and i in held]
    refused = [i for i in ids if i not in done and i not in fresh and i not in skipped]
    recorded: list[int] = []
    now = now_utc()
    if fresh:
        per_item = elapsed_ms // max(1, len(fresh) + len(skipped)) if elapsed_ms else None
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(Vote)
            .values(
                [
                    {
                        "candidate_id": i,
                        "annotator_id": me,
                        "answer": answers[i],
                        "time_ms": per_item,
                        "created_at": now,
                    }
                    for i in fresh
                ]
            )
            .on_conflict_do_nothing(index_elements=[Vote.candidate_id, Vote.annotator_id])
            .returning(Vote.candidate_id)
        )
        recorded = list(session.scalars(stmt))
    if skipped:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(Unsure)
            .values([{"candidate_id": i, "annotator_id": me, "created_at": now} for i in skipped])
            .on_conflict_do_nothing()
        )
    released = [*fresh, *skipped]
    if released:
        session.execute(
            update(Lease)
            .where(Lease.candidate_id.in_(released), Lease.annotator_id == me)
            .values(expires_at=now)
        )
    queue.after_votes(session, recorded, live.config_from(cfg))
    if recorded:
        _count_page(session, annotator, cfg)
    return VoteResult(accepted=len(recorded), already=len(done), refused=refused)


def _count_page(session: Session, annotator: Annotator, cfg: Settings) -> None:
    """One more page done; crowd workers get their completion code after enough pages."""
    session.execute(
        update(Annotator)
        .where(Annotator.id == annotator.id)
        .values(pages_done=Annotator.pages_done + 1)
    )
    session.refresh(annotator, ["pages_done", "completion_code"])
    if (
        annotator.worker_id
        and annotator.completion_code is None
        and annotator.pages_done >= cfg.crowd_pages
    ):
        annotator.completion_code = secrets.token_hex(5).upper()
