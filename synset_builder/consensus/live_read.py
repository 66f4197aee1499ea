"""What one consensus update on the request path reads: the items just voted on,
their votes, and their voters' records, decoded from one round trip
(``live_sql.items_votes``). Split from :mod:`synset_builder.consensus.live`, which
decides with what is read here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus.live_sql import LiveStatements
from synset_builder.consensus.model import SkillState
from synset_builder.consensus.quality import COUNT_KEYS


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class Item:
    """What one candidate's update reads: its synset, gold answer, state and votes."""

    synset_id: int
    gold: bool | None
    initial: bool
    decision: str | None
    votes: list[tuple[int, bool, datetime]] = field(default_factory=list)
    requeues: list[tuple[int, datetime]] = field(default_factory=list)


@dataclass
class Read:
    items: dict[int, Item]
    state: SkillState
    active: set[int]  # voters of these items who could vote again elsewhere
    team: int  # annotators who can be served anything at all
    ledger_rows: int = 0  # the voters' unfolded annotator_tally_delta rows


def _matrix(counts: Mapping[str, float] | None) -> list[list[float]]:
    """``{"yy", "yn", "ny", "nn"}`` (truth, vote) as a 2 x 2 matrix, index 0 = no."""
    c = counts or {}
    return [[c.get("nn", 0.0), c.get("ny", 0.0)], [c.get("yn", 0.0), c.get("yy", 0.0)]]


def read_items(
    conn: Connection, ids: list[int], config: DynamicConfig, sql: LiveStatements
) -> tuple[Read, dict[int, list[int] | None], bool]:
    """The items with their votes, each synset's prior and initial subset (None: not
    fixed yet), and each voter's record, as a :class:`SkillState` (the model every
    path decides with); and whether any item has an open requeue."""
    items: dict[int, Item] = {}
    subsets: dict[int, list[int] | None] = {}
    state = SkillState(k=2, skill=config.newcomer_skill, shrink=config.shrink)
    active: set[int] = set()
    seen: set[int] = set()
    requeued = False
    team = kept = 0
    for row in conn.execute(sql.items_votes, {"ids": ids}):
        cid, sid, initial_ids, prior_yes, hard_share, gold, initial, decision, req, team = row[:10]
        voter, answer, at, can_vote = row[10:14]
        counts = row[14:20]  # nn, ny, yn, yy, answered no, answered yes
        excluded, reason, *matrix, ledger_rows = row[20:]
        item = items.get(cid)
        if item is None:
            item = items[cid] = Item(sid, gold, bool(initial), decision)
            if sid not in subsets:
                subsets[sid] = json.loads(initial_ids) if initial_ids else None
                if prior_yes is not None:
                    state.priors[sid] = [1.0 - prior_yes, prior_yes]
                if hard_share:
                    state.hard[sid] = hard_share
            requeued = requeued or bool(req)
        if voter is None:
            continue
        item.votes.append((voter, answer, utc(at)))
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
    return Read(items, state, active, team, kept), subsets, requeued
