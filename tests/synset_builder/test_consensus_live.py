"""The web app's view of consensus: what is served, in which order, and when it stops."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus.dynamic import CAP, HOPELESS
from synset_builder.consensus.live import after_votes, open_clause, priority_order
from synset_builder.consensus.model import SkillState
from synset_builder.db.models import (
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Image,
    Requeue,
    Synset,
)
from synset_builder.db.session import make_engine, session_scope
from synset_builder.pool import clean_clause
from tests.conftest import DatabaseFactory
from tests.consensus_data import cast, make_annotators, make_synset

SMALL = DynamicConfig(initial_size=3, initial_votes=4, max_votes=8)
# Unanimous newcomers (right 65% of the time) pass 0.9 at the fourth vote: 1.857^4 = 12 to 1.
NEWCOMERS_TO_DECIDE = 4


def served(session: Session, synset_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Candidate.id)
            .join(Image, Image.id == Candidate.image_id)
            .where(Candidate.synset_id == synset_id, clean_clause(), open_clause())
            .order_by(*priority_order())
        )
    )


def state(session: Session, cid: int) -> Consensus:
    session.expire_all()
    return session.get(Consensus, cid)


def test_initial_subset_is_what_was_served_first_and_stays_first(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    cands = make_synset(session, "n01", photos, tmp_path, 8)
    sid = cands[0].synset_id
    first = served(session, sid)
    assert sorted(first) == sorted(c.id for c in cands)
    people = make_annotators(session, ["a", "b"])
    top = session.get(Candidate, first[0])
    cast(session, top, people[0], True)
    after_votes(session, [top.id], config=SMALL)
    initial = set(session.scalars(select(Consensus.candidate_id).where(Consensus.initial)).all())
    assert initial == set(first[:3])
    assert set(served(session, sid)[:3]) == initial


def test_initial_items_need_their_votes_then_confident_items_stop(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    cands = make_synset(session, "n02", photos, tmp_path, 6)
    sid = cands[0].synset_id
    people = make_annotators(session, [f"p{i}" for i in range(8)])
    order = served(session, sid)
    init_item = session.get(Candidate, order[0])
    # Unanimous "yes" from newcomers decides nothing before the evidence is there.
    for who in people[: NEWCOMERS_TO_DECIDE - 1]:
        cast(session, init_item, who, True)
        after_votes(session, [init_item.id], config=SMALL)
    assert state(session, init_item.id).decision == "pending"
    assert init_item.id in served(session, sid)
    cast(session, init_item, people[NEWCOMERS_TO_DECIDE - 1], True)
    after_votes(session, [init_item.id], config=SMALL)
    row = state(session, init_item.id)
    assert row.decision == "accepted" and row.p_yes >= SMALL.threshold
    assert row.n_votes == NEWCOMERS_TO_DECIDE
    assert init_item.id not in served(session, sid)

    # A non-initial item stops as soon as the posterior passes the threshold.
    other = session.get(Candidate, order[-1])
    votes_used = 0
    for who in people:
        cast(session, other, who, False)
        votes_used += 1
        after_votes(session, [other.id], config=SMALL)
        if state(session, other.id).decision != "pending":
            break
    row = state(session, other.id)
    assert row.decision == "rejected" and row.p_yes <= 1 - SMALL.threshold
    assert votes_used < SMALL.max_votes
    assert other.id not in served(session, sid)


def test_split_votes_hit_the_cap_and_become_undecided(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    cands = make_synset(session, "n03", photos, tmp_path, 6)
    people = make_annotators(session, [f"q{i}" for i in range(SMALL.max_votes)])
    item = session.get(Candidate, served(session, cands[0].synset_id)[-1])
    for i, who in enumerate(people):
        cast(session, item, who, i % 2 == 0)
        after_votes(session, [item.id], config=SMALL)
    row = state(session, item.id)
    assert (row.decision, row.initial) == ("undecided", False)
    # Stopped at the cap, or sooner where even strong votes could no longer settle it.
    assert row.n_votes <= SMALL.max_votes and row.reason in (CAP, HOPELESS)
    assert 0.05 < row.p_yes < 0.95
    assert item.id not in served(session, cands[0].synset_id)


def test_requeued_item_is_served_again_until_fresh_votes_decide_it(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    cands = make_synset(session, "n04", photos, tmp_path, 6)
    sid = cands[0].synset_id
    people = make_annotators(session, [f"r{i}" for i in range(12)])
    item = session.get(Candidate, served(session, sid)[-1])
    for who in people[:NEWCOMERS_TO_DECIDE]:
        cast(session, item, who, True)
        after_votes(session, [item.id], config=SMALL)
    assert state(session, item.id).decision == "accepted"
    rq = Requeue(candidate_id=item.id, reason="trainer suspect")
    session.add(rq)
    state(session, item.id).decision = "undecided"
    session.flush()
    assert item.id in served(session, sid)
    assert served(session, sid)[0] != item.id or state(session, item.id).initial is False
    # Fresh "no" votes (at least requeue_votes) until the cap: rejected or undecided.
    assert SMALL.max_votes - NEWCOMERS_TO_DECIDE >= SMALL.requeue_votes
    for who in people[NEWCOMERS_TO_DECIDE : SMALL.max_votes]:
        cast(session, item, who, False)
        after_votes(session, [item.id], config=SMALL)
    session.expire_all()
    assert session.get(Requeue, rq.id).resolved_at is not None
    assert state(session, item.id).decision in {"rejected", "undecided"}
    assert item.id not in served(session, sid)


def test_gold_items_are_decided_by_their_answer(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    cands = make_synset(session, "n05", photos, tmp_path, 4)
    session.add(Gold(candidate_id=cands[1].id, answer=False))
    (who,) = make_annotators(session, ["g"])
    cast(session, cands[1], who, True)
    after_votes(session, [cands[1].id], config=SMALL)
    row = state(session, cands[1].id)
    assert (row.decision, row.p_yes) == ("rejected", 0.0)


def test_each_vote_is_weighed_by_its_voters_gold_record_stored_counts_and_exclusion(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    """A submit reads every voter's skill with the items (one query): check it is theirs."""
    cands = make_synset(session, "n06", photos, tmp_path, 6)
    gold_items = cands[4:]
    session.add_all([Gold(candidate_id=c.id, answer=True) for c in gold_items])
    liar, honest, seasoned, out = make_annotators(session, ["liar", "honest", "seasoned", "out"])
    session.add_all(
        [
            AnnotatorQuality(annotator_id=seasoned.id, yy=30, nn=30),
            AnnotatorQuality(annotator_id=out.id, yy=30, excluded=True),
        ]
    )
    for item in gold_items:
        cast(session, item, liar, False)
        cast(session, item, honest, True)
    after_votes(session, [c.id for c in gold_items], config=SMALL)  # fixes the initial subset
    initial = set(session.scalars(select(Consensus.candidate_id).where(Consensus.initial)))
    (item,) = [c for c in cands[:4] if c.id not in initial]
    for who in (liar, honest, seasoned, out):
        cast(session, item, who, True)
    after_votes(session, [item.id], config=SMALL)
    row = state(session, item.id)
    assert row.n_votes == 3  # the excluded annotator's vote is not counted
    model = SkillState(k=2, skill=SMALL.newcomer_skill, shrink=SMALL.shrink)
    model.gold_counts[liar.id] = np.array([[0.0, 0.0], [2.0, 0.0]])  # said no to 2 gold yeses
    model.gold_counts[honest.id] = np.array([[0.0, 0.0], [0.0, 2.0]])
    model.counts[seasoned.id] = np.array([[30.0, 0.0], [0.0, 30.0]])
    votes = [(liar.id, 1), (honest.id, 1), (seasoned.id, 1)]
    expected, _ = model.posterior(None, votes)  # no refit yet: an even prior
    assert abs(row.p_yes - expected[1]) < 1e-9
    liar_alone, _ = model.posterior(None, votes[:1])
    assert abs(row.p_yes - liar_alone[1]) > 1e-3  # the others' records moved it


def test_two_submits_crediting_one_voter_at_once_both_count(
    db_factory: DatabaseFactory, photos: list[Path], tmp_path: Path
) -> None:
    """Two initial items are decided in concurrent submits and credit the same voters: no
    duplicate-key error (the record is created once) and no lost update (both count)."""
    engine = make_engine(db_factory.migrated("postgresql"))
    try:
        with session_scope(engine) as s:
            cands = make_synset(s, "n09", photos, tmp_path, 6)
            people = make_annotators(s, [f"v{i}" for i in range(NEWCOMERS_TO_DECIDE + 1)])
            after_votes(s, [cands[0].id], config=SMALL)  # fixes the initial subset
            first, second = s.scalar(select(Synset.initial_ids).where(Synset.wnid == "n09"))[:2]
            for item in (first, second):
                for who in people:
                    cast(s, s.get(Candidate, item), who, True)
            voters = [p.id for p in people]
        flushed, errors = threading.Event(), []

        def submit(item: int, hold: float) -> None:
            try:
                with session_scope(engine) as s:
                    after_votes(s, [item], config=SMALL)
                    flushed.set()
                    time.sleep(hold)  # the other submit runs into this one's rows
            except BaseException as exc:  # surfaced below, in the test's thread
                errors.append(exc)
                flushed.set()

        one = threading.Thread(target=submit, args=(first, 0.5))
        one.start()
        flushed.wait(10)
        submit(second, 0.0)
        one.join()
        assert errors == []
        with session_scope(engine) as s:
            rows = s.scalars(
                select(AnnotatorQuality).where(AnnotatorQuality.annotator_id.in_(voters))
            ).all()
            assert len(rows) == len(voters)
            # Each decided item credits each voter with one (truth, vote) count.
            credits = [r.yy + r.yn + r.ny + r.nn for r in rows]
            assert credits == [pytest.approx(2.0)] * len(voters)
    finally:
        engine.dispose()
