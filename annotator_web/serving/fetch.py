"""A task fetch: picking a synset, then leasing a page of its items to the annotator.

Leases are rows of ``lease`` (one per candidate, primary key = candidate). Taking an
item is a conditional upsert that only succeeds when the row is new, expired or
already ours, so two annotators can never hold one item, on either backend.
PostgreSQL additionally locks the candidate rows it is about to lease with
``FOR UPDATE SKIP LOCKED``, so concurrent requests pick different items instead of
queueing behind one another. The statements come built once per backend
(:class:`~annotator_web.serving.statements.Statements`, ``sql`` below).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import NamedTuple

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from annotator_web.serving.goals import GoalCache
from annotator_web.serving.page import (
    Account,
    Place,
    SynsetRow,
    Task,
    TaskItem,
    accepted_examples,
    exclusion_reason,
    load_caller,
    synset_path,
)
from annotator_web.serving.statements import Pick, Statements
from synset_builder.config import Settings
from synset_builder.db.models import SERVE_KEY_RANGE, Annotator, Lease, Synset, utcnow
from synset_builder.errors import NotFound

# Picks lost to a concurrent request are replaced by new picks this many times at most.
RACE_RETRIES = 5

# Runs a pick query with its parameters: selects, or selects and leases (_grab).
Grab = Callable[[Select[tuple[int, int]], dict], list[Pick]]


class Probe(NamedTuple):
    """What serving a synset needs to know first (``sql.synset_probe``)."""

    below_goal: bool
    initial: list[int]  # the synset's initial subset ([] until its first submit)
    held: bool  # this annotator holds unexpired leases here (a page reload)
    tiers: tuple[bool, ...]  # per small serving tier: may hold items for this annotator


def probe(
    session: Session,
    sql: Statements,
    synset: Synset | SynsetRow,
    annotator_id: int,
    goals: GoalCache | None = None,
) -> Probe:
    """The synset's goal state and serving tiers, as seen by this annotator.

    ``goals``: reuse a recent goal answer instead of counting (None: always count).
    """
    initial = list(synset.initial_ids or [])
    if not synset.target or synset.goal is None or synset.goal <= 0:
        return Probe(False, initial, False, ())
    known = goals.known(synset.id, synset.goal) if goals is not None else None
    if known is False:  # at its goal: nothing to ask
        return Probe(False, initial, False, ())
    params = {"now": utcnow(), "synset_id": synset.id, "n": synset.goal, "me": annotator_id,
              "initial": initial, "check_goal": known is None}  # fmt: skip
    conn = session.connection()
    below, held, *tiers = conn.execute(sql.synset_probe, params).one()
    if goals is not None and known is None:
        goals.remember(synset.id, synset.goal, bool(below))
    return Probe(bool(below), initial, bool(held), tuple(map(bool, tiers)))


def _lease_new(
    session: Session,
    sql: Statements,
    *,
    synset_id: int,
    annotator_id: int,
    n: int,
    gold: bool,
    state: Probe,
    cfg: Settings,
    held: Sequence[int] = (),
) -> list[Pick]:
    """Lease up to ``n`` fresh items; losing a race for some just means picking again.

    ``held``: items already on the caller's page (a reload re-serves them), never
    picked again: the pick queries exclude other people's leases, not the caller's.
    """
    taken: list[Pick] = []
    lost: list[Pick] = []
    grab = partial(_grab, session, sql, annotator_id=annotator_id, cfg=cfg, lost=lost)
    # Before the first submit fixes the initial subset, serve from the lowest keys:
    # those are the items the subset will be made of (live.ensure_initial_subset).
    start = random.randrange(SERVE_KEY_RANGE) if state.initial else 0
    for _ in range(RACE_RETRIES):
        if len(taken) >= n:
            break
        want = n - len(taken)
        skip = [*held, *(t.candidate_id for t in taken)]
        lost.clear()
        if gold:
            taken += _pick_gold(session, sql, synset_id, annotator_id, want, skip, grab)
        else:
            taken += _pick(session, sql, synset_id, annotator_id, want, skip, start, state, grab)
        if not lost:  # what was found was obtained: nothing more to find
            break
    return taken


def _select(session: Session, stmt: Select[tuple[int, int]], params: dict) -> list[Pick]:
    return [Pick(*row) for row in session.connection().execute(stmt, params)]


def _grab(
    session: Session, sql: Statements, stmt: Select[tuple[int, int]], params: dict, *,
    annotator_id: int, cfg: Settings, lost: list[Pick],
) -> list[Pick]:  # fmt: skip
    """Run a pick query and lease its picks; the picks obtained. Picks another request
    leased first are added to ``lost``."""
    got, taken_first = sql.grab(
        session.connection(), stmt, params, annotator_id, cfg.web.lease_seconds
    )
    lost += taken_first
    return got


def _pick_gold(
    session: Session,
    sql: Statements,
    synset_id: int,
    annotator_id: int,
    n: int,
    skip: Sequence[int],
    grab: Grab | None = None,
) -> list[Pick]:
    params = {"now": utcnow(), "synset_id": synset_id, "me": annotator_id, "n": n,
              "skip": list(skip)}  # fmt: skip
    stmt = sql.gold_picks
    return grab(stmt, params) if grab else _select(session, stmt, params)


def _pick(
    session: Session,
    sql: Statements,
    synset_id: int,
    annotator_id: int,
    n: int,
    skip: Sequence[int],
    start: int,
    state: Probe,
    grab: Grab | None = None,
) -> list[Pick]:
    """Up to ``n`` open items in consensus priority order, read tier by tier.

    Equivalent to ordering by ``live.priority_order()``, except that the last
    tier (the bulk of the synset) is walked from ``start`` and wraps around, so
    concurrent annotators begin at different places instead of all stepping over
    the same leased and decided items at the front of the key order. ``state.tiers``
    says which of the small first tiers may have items (``sql.synset_probe``).
    ``grab`` runs each tier's query (default: only select; :func:`_grab` leases).
    """
    params = {"now": utcnow(), "synset_id": synset_id, "me": annotator_id, "start": start,
              "initial": state.initial}  # fmt: skip
    *first, after, before = sql.fresh_picks
    stmts = [stmt for stmt, present in zip(first, state.tiers, strict=True) if present]
    picks: list[Pick] = []
    for stmt in [*stmts, after, before]:
        if len(picks) >= n:
            break
        params.update(n=n - len(picks), skip=[*skip, *(p.candidate_id for p in picks)])
        picks += grab(stmt, params) if grab else _select(session, stmt, params)
    return picks


def _pick_fresh(
    session: Session,
    sql: Statements,
    synset_id: int,
    annotator_id: int,
    n: int,
    skip: Sequence[int],
    start: int,
) -> list[int]:
    """The candidate ids :func:`_pick` serves from ``start``, every tier read."""
    synset = session.get(Synset, synset_id)
    initial = list(synset.initial_ids or []) if synset else []
    state = Probe(True, initial, False, (True,) * sql.tiers)
    picks = _pick(session, sql, synset_id, annotator_id, n, skip, start, state)
    return [p.candidate_id for p in picks]


def _synset_order(
    session: Session, sql: Statements, current: SynsetRow | None
) -> Iterator[Synset | SynsetRow]:
    """Target synsets: the annotator's current one first, then the rest shuffled.

    Staying on one synset keeps the annotator's mental model; shuffling the rest
    spreads many annotators over many synsets, so they rarely contend for items.
    The rest is only read when the current synset has nothing left.
    """
    if current is not None and current.target:
        yield current
    skip = current.id if current is not None else None
    others = [sid for sid in session.scalars(sql.target_synsets) if sid != skip]
    random.shuffle(others)
    for sid in others:
        synset = session.get(Synset, sid)
        if synset is not None:
            yield synset


def next_task(
    session: Session,
    sql: Statements,
    *,
    annotator: Annotator | Account,
    n: int,
    wnid: str | None,
    cfg: Settings,
    decorate: bool = True,
    place: Place | None = None,
    goals: GoalCache | None = None,
) -> Task:
    """Lease up to ``n`` items of one synset (gold mixed in unseen) to the annotator.

    ``wnid`` pins the synset; otherwise the server picks one that still needs votes.
    ``decorate`` adds what only the HTML page shows (path, accepted examples).
    ``place`` is the caller's from :func:`load_caller`, when it was read with them.
    ``goals`` is the process's :class:`GoalCache` (None: count the goal every time).
    """
    if place is None:
        place = load_caller(session, sql, annotator.id)[1]
    excluded = exclusion_reason(session, annotator.id) if place.excluded else None
    if excluded is not None:
        return Task(synset=None, excluded=excluded)
    if wnid is not None:
        synset = session.scalar(select(Synset).where(Synset.wnid == wnid))
        if synset is None:
            raise NotFound(f"Unknown synset {wnid!r}.")
        choices: Iterable[Synset | SynsetRow] = [synset]
    else:
        choices = _synset_order(session, sql, place.current)
    for synset in choices:
        state = probe(session, sql, synset, annotator.id, goals)
        if not state.below_goal:
            if wnid is not None:
                return Task(synset=synset, path=synset_path(session, synset))
            continue
        items = _fill(
            session, sql, synset_id=synset.id, annotator_id=annotator.id, n=n, state=state, cfg=cfg
        )
        if items or wnid is not None:
            break
    else:
        return Task(synset=None)
    return Task(
        synset=synset,
        items=[TaskItem(candidate_id=i.candidate_id, image_id=i.image_id) for i in items],
        path=synset_path(session, synset) if decorate else [],
        examples=accepted_examples(session, synset.id) if decorate else [],
    )


def _fill(
    session: Session,
    sql: Statements,
    *,
    synset_id: int,
    annotator_id: int,
    n: int,
    state: Probe,
    cfg: Settings,
) -> list[Pick]:
    """The items of one page, shuffled: items already held (a reload), gold, fresh items."""
    held: list[Pick] = []
    if state.held:
        params = {"now": utcnow(), "synset_id": synset_id, "me": annotator_id, "n": n}
        conn = session.connection()
        held = [Pick(*row) for row in conn.execute(sql.held_items, params)]
        ids = [h.candidate_id for h in held]
        got = sql.lease(conn, ids, annotator_id, cfg.web.lease_seconds)  # extends their expiry
        held = [h for h in held if h.candidate_id in got]
    want = n - len(held)
    n_gold = int(want * cfg.web.gold_fraction + random.random())
    args = {"synset_id": synset_id, "annotator_id": annotator_id, "state": state, "cfg": cfg,
            "held": [h.candidate_id for h in held]}  # fmt: skip
    gold = _lease_new(session, sql, n=n_gold, gold=True, **args) if n_gold else []
    fresh = _lease_new(session, sql, n=want - len(gold), gold=False, **args)
    if gold and not fresh and not held:
        # Gold alone is not a task: nothing real is left here, give the gold back.
        session.execute(
            update(Lease)
            .where(Lease.candidate_id.in_([g.candidate_id for g in gold]))
            .values(expires_at=utcnow())
        )
        gold = []
    items = held + gold + fresh
    random.shuffle(items)
    return items
