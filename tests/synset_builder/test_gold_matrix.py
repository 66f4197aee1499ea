"""The submit's gold matrix from the kept counters equals the scan of the votes.

A web submit weighs each voter by their (truth, vote) counts on gold items. It
reads them from four kept counters per annotator (migration 0021:
answered, correct, truth yes, said yes) instead of scanning every vote the voter
cast. Each step below is a write that moves those counts (votes in one statement
and one at a time, an answer or an item rewritten, a page undone, gold answers
added, changed and removed by a file or by a curator's judgement, ledger folds),
followed by the same check: the matrix a submit reads equals
``quality.gold_counts``, the scan it replaced. Both backends.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from annotator_web.serving.statements import build_statements
from annotator_web.serving.undo import undo_last_page
from synset_builder import recount, tally
from synset_builder.config import Settings
from synset_builder.consensus import live, quality
from synset_builder.consensus.live_sql import kept_gold
from synset_builder.db import migrate
from synset_builder.db.models import (
    Annotator,
    AnnotatorTally,
    AnnotatorTallyDelta,
    Gold,
    Vote,
    VoteUndone,
    utcnow,
)
from synset_builder.db.session import make_engine
from synset_builder.gold import set_gold
from synset_builder.review import decisions
from tests.synset_builder.test_tally import World
from tests.tally_check import exact_equals_kept


def matrix_equals_scan(s: Session) -> dict[int, dict[str, int]]:
    """Assert the kept gold matrix of every annotator equals the scan; return it."""
    s.flush()
    ids = list(s.scalars(select(Annotator.id)))
    zero = dict.fromkeys(quality.COUNT_KEYS, 0)
    kept = {aid: dict(zero) for aid in ids}
    for voter, *counts, _rows in s.execute(select(kept_gold(select(Annotator.id)))):
        kept[voter] = {k: int(n or 0) for k, n in zip(quality.COUNT_KEYS, counts, strict=True)}
    assert kept == quality.gold_counts(s, ids)
    exact_equals_kept(s)  # and every other kept counter, the new two included
    return kept


@pytest.fixture
def world(session, tmp_path, photos) -> World:
    return World(session, tmp_path / "data", photos)


def test_the_gold_matrix_from_counters_follows_every_write(session, world, tmp_path) -> None:
    s, w = session, world
    c = [x.id for x in w.cands]
    p = [a.id for a in w.people]
    curator = Annotator(username="cur", role="curator")
    s.add(curator)
    s.flush()

    # Votes before any gold: a page in one statement, single votes.
    s.execute(insert(Vote), [{"candidate_id": cid, "annotator_id": p[0], "answer": k % 2 == 0,
                              "time_ms": 900} for k, cid in enumerate(c[:6])])  # fmt: skip
    s.add_all([Vote(candidate_id=c[0], annotator_id=p[1], answer=False),
               Vote(candidate_id=c[1], annotator_id=p[1], answer=True)])  # fmt: skip
    assert matrix_equals_scan(s)[p[0]] == dict.fromkeys(quality.COUNT_KEYS, 0)

    # Gold added (yes and no), then one answer changed.
    for cid, answer in ((c[0], True), (c[1], False), (c[2], True), (c[3], False)):
        set_gold(s, cid, answer)
    # p0 said yes, no, yes, no on them; p1 no on c0 (truth yes), yes on c1 (truth no).
    kept = matrix_equals_scan(s)
    assert kept[p[0]] == {"yy": 2, "yn": 0, "ny": 0, "nn": 2}
    assert kept[p[1]] == {"yy": 0, "yn": 1, "ny": 1, "nn": 0}
    set_gold(s, c[2], False)
    assert matrix_equals_scan(s)[p[0]] == {"yy": 1, "yn": 0, "ny": 1, "nn": 2}

    # Votes on gold items after the gold; an answer rewritten; a vote moved to another item.
    s.execute(insert(Vote), [{"candidate_id": cid, "annotator_id": p[2], "answer": True}
                             for cid in c[:4]])  # fmt: skip
    matrix_equals_scan(s)
    s.execute(update(Vote).where(Vote.annotator_id == p[2], Vote.candidate_id == c[1])
              .values(answer=False))  # fmt: skip
    matrix_equals_scan(s)
    s.execute(update(Vote).where(Vote.annotator_id == p[1], Vote.candidate_id == c[0])
              .values(candidate_id=c[3]))  # fmt: skip
    assert matrix_equals_scan(s)[p[1]] == {"yy": 0, "yn": 0, "ny": 1, "nn": 1}

    # An undone page: its votes (two on gold items) move to vote_undone.
    at = utcnow()  # later than every vote above: the last page
    s.execute(insert(Vote), [{"candidate_id": cid, "annotator_id": p[1], "answer": True,
                              "created_at": at} for cid in (c[0], c[2], c[6])])  # fmt: skip
    with_page = matrix_equals_scan(s)[p[1]]
    cfg = Settings(database_url="sqlite://", data_dir=tmp_path / "cfg")
    assert undo_last_page(s, build_statements(s.get_bind()), annotator_id=p[1], cfg=cfg).votes == 3
    assert s.scalar(select(VoteUndone.id).limit(1)) is not None
    assert matrix_equals_scan(s)[p[1]] != with_page

    # A vote deleted by hand; a gold answer removed.
    s.execute(delete(Vote).where(Vote.annotator_id == p[2], Vote.candidate_id == c[0]))
    matrix_equals_scan(s)
    s.execute(delete(Gold).where(Gold.candidate_id == c[3]))
    matrix_equals_scan(s)

    # A curator's judgement makes an item gold; withdrawing it removes that gold.
    decisions.record(s, [(c[4], True), (c[5], False)], curator_id=curator.id)
    assert matrix_equals_scan(s)[p[0]] == {"yy": 2, "yn": 0, "ny": 1, "nn": 2}
    decisions.withdraw(s, [c[4]], curator_id=curator.id)
    matrix_equals_scan(s)

    # Folds move numbers between tally and ledger without changing one.
    before = matrix_equals_scan(s)
    assert tally.fold_voters(s, [p[0], p[1]])
    assert not s.scalars(
        select(AnnotatorTallyDelta.id).where(AnnotatorTallyDelta.annotator_id.in_(p[:2]))
    ).all()
    assert matrix_equals_scan(s) == before
    s.add(Vote(candidate_id=c[5], annotator_id=p[1], answer=False))
    after_vote = matrix_equals_scan(s)
    assert tally.fold(s, tally.ANNOTATORS)
    assert matrix_equals_scan(s) == after_vote


def test_a_submit_folds_its_voters_long_ledger(session, world, monkeypatch) -> None:
    s, w = session, world
    c = [x.id for x in w.cands]
    p = [a.id for a in w.people]
    set_gold(s, c[0], True)
    set_gold(s, c[1], False)
    for k, voter in enumerate(p):
        page = [{"candidate_id": cid, "annotator_id": voter, "answer": (k + j) % 2 == 0}
                for j, cid in enumerate(c[:3])]  # fmt: skip
        s.execute(insert(Vote), page)
    before = matrix_equals_scan(s)
    ledger_votes = select(func.coalesce(func.sum(AnnotatorTallyDelta.votes), 0))
    assert s.scalar(ledger_votes) == 9
    monkeypatch.setattr(tally, "VOTER_FOLD_AT", 1)
    live.after_votes(s, c[:3])
    s.flush()
    # The vote rows the submit read are in the tally now (its decisions may have
    # appended rows of their own since).
    assert s.scalar(ledger_votes) == 0
    assert set(
        s.scalars(select(AnnotatorTally.votes).where(AnnotatorTally.annotator_id.in_(p)))
    ) == {3}
    assert matrix_equals_scan(s) == before


def test_the_upgrade_backfills_the_two_counters(db_factory, backend, tmp_path, photos) -> None:
    """Votes and gold from before migration 0021 are counted by it, then kept."""
    url = db_factory.empty(backend)
    migrate.upgrade(url, "0020_consensus_refit")
    engine = make_engine(url)
    with Session(engine) as s:
        w = World(s, tmp_path / "data", photos)
        c = [x.id for x in w.cands]
        for cid, answer in ((c[0], True), (c[1], False), (c[2], True)):
            s.add(Gold(candidate_id=cid, answer=answer))
        s.execute(insert(Vote), [{"candidate_id": cid, "annotator_id": a.id,
                                  "answer": (cid + k) % 3 != 0}
                                 for k, a in enumerate(w.people) for cid in c[:4]])  # fmt: skip
        s.commit()
    migrate.upgrade(url)
    with Session(engine) as s:
        kept = matrix_equals_scan(s)
        assert sum(m["yy"] + m["yn"] for m in kept.values()) == 6  # 2 gold yeses x 3 voters
        assert recount.recount(s) == []
    engine.dispose()
