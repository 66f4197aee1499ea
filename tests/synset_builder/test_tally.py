"""The kept per-synset counters equal an exact recount after every kind of write.

Each step below is a write a real project makes (the crawl's candidates and
failures, the clean stage, votes, consensus, a requeue, takedowns and their
revocation, reports and their resolution, a curator's keep) and is followed by
the same check: what pages read (tally.read, funnel) equals what the exact
GROUP BY definitions count (status.COUNTERS, count_agreement). Both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from synset_builder import recount, tally
from synset_builder.clean.run import keep, run_clean
from synset_builder.config.clean import CleanConfig
from synset_builder.consensus.recompute import RecomputeConfig, recompute
from synset_builder.crawl.store import add_image
from synset_builder.db.models import (
    Annotator,
    Candidate,
    Consensus,
    FetchFailure,
    Image,
    Report,
    Synset,
    SynsetTallyDelta,
    Vote,
)
from synset_builder.db.session import make_engine, session_scope
from synset_builder.gold import set_gold
from synset_builder.takedown import add_takedown, revoke_takedown
from synset_builder.train.requeue import Suspect, requeue
from tests import photo_variants as pv
from tests.synset_builder.test_status import seed_decisions
from tests.tally_check import exact_equals_kept


class World:
    """Two synsets of real photos (one picture in both), three annotators."""

    def __init__(self, session: Session, data: Path, photos: list[Path]) -> None:
        self.session = session
        self.data = data
        self.photos = photos
        self.a = self.synset("n01000001")
        self.b = self.synset("n01000002")
        blobs = [p.read_bytes() for p in photos[:9]]
        blobs.append(pv.variant(photos[0], "jpeg_q30"))  # a near copy of the first
        blobs.append(pv.tiny(photos[9]))  # rejected by the quality filter
        self.cands: list[Candidate] = []
        for k, blob in enumerate(blobs):
            self.cands.append(self.candidate(blob, self.a, f"https://ex.org/a{k}.jpg",
                                             "alice" if k % 2 else "bob"))  # fmt: skip
        for k, blob in enumerate([blobs[3], *(p.read_bytes() for p in photos[10:13])]):
            self.cands.append(self.candidate(blob, self.b, f"https://ex.org/b{k}.jpg", "carol"))
        self.people = [Annotator(username=f"p{k}", role="annotator") for k in range(3)]
        session.add_all(self.people)
        session.flush()

    def synset(self, wnid: str) -> Synset:
        row = Synset(wnid=wnid, name=wnid, lemmas=[wnid], target=True)
        self.session.add(row)
        self.session.flush()
        return row

    def candidate(self, blob: bytes, syn: Synset, url: str, creator: str) -> Candidate:
        image = add_image(self.session, self.data, blob)
        cand = Candidate(image_id=image.id, synset_id=syn.id, source="urls", url=url,
                         creator=creator)  # fmt: skip
        self.session.add(cand)
        self.session.flush()
        return cand

    def sha(self, k: int) -> str:
        return self.session.get(Image, self.cands[k].image_id).sha256


@pytest.fixture
def world(session, tmp_path, photos) -> World:
    return World(session, tmp_path / "data", photos)


def test_counters_equal_a_recount_after_every_kind_of_write(session, world) -> None:
    w, s = world, session
    kept = exact_equals_kept(s)
    assert kept[w.a.id].counts["candidates"] == 11 and kept[w.b.id].counts["candidates"] == 4
    assert kept[w.a.id].counts["clean"] == 0  # nothing checked yet

    # The crawl's failures, one of them later fetched on a retry.
    s.add_all([FetchFailure(synset_id=w.a.id, url=f"https://gone/{k}", url_sha256=f"{k:064x}",
                            source="urls", reason="http_404") for k in range(3)])  # fmt: skip
    s.flush()
    s.execute(
        update(FetchFailure).where(FetchFailure.url == "https://gone/1").values(resolved=True)
    )
    assert exact_equals_kept(s)[w.a.id].counts["failed"] == 2

    # The clean stage: quality verdicts, near duplicates.
    run_clean(s, w.data, CleanConfig(workers=1))
    kept = exact_equals_kept(s)
    assert kept[w.a.id].counts["rejected"] == 2  # the tiny picture and the near copy
    assert kept[w.a.id].counts["clean"] == 9 and kept[w.b.id].counts["clean"] == 4

    # A curator keeps the tiny picture after all.
    keep(s, w.sha(10))
    assert exact_equals_kept(s)[w.a.id].counts["clean"] == 10

    # Votes: several rows in one statement (the web app's page) and one at a time; one
    # item was gold before, one becomes gold after, one gold answer changes.
    set_gold(s, w.cands[2].id, True)
    p = [a.id for a in w.people]
    page = [{"candidate_id": c.id, "annotator_id": p[0], "answer": True, "time_ms": 1500 + k}
            for k, c in enumerate(w.cands[:6])]  # fmt: skip
    s.execute(insert(Vote), page)
    s.execute(insert(Vote), [{"candidate_id": w.cands[0].id, "annotator_id": p[1],
                              "answer": False}])  # fmt: skip
    s.add(Vote(candidate_id=w.cands[0].id, annotator_id=p[2], answer=True))
    s.add(Vote(candidate_id=w.cands[1].id, annotator_id=p[1], answer=True))
    kept = exact_equals_kept(s)
    assert kept[w.a.id].counts["votes"] == 9
    assert kept[w.a.id].agreement == pytest.approx((2 / 3 + 1) / 2)
    set_gold(s, w.cands[0].id, False)
    set_gold(s, w.cands[2].id, False)
    assert tally.read_annotators(s)[p[0]] == {
        "votes": 6, "timed_votes": 6, "time_ms": 6 * 1500 + 15, "gold_answered": 2,
        "gold_correct": 0, "decided": 0, "agreed": 0, "gold_truth_yes": 0, "gold_said_yes": 2,
    }  # fmt: skip
    exact_equals_kept(s)

    # Consensus over everything, then one decision changed by hand.
    recompute(s, RecomputeConfig())
    exact_equals_kept(s)
    row = s.get(Consensus, w.cands[1].id)
    row.decision = "rejected" if row.decision == "accepted" else "accepted"
    exact_equals_kept(s)

    # A trainer's suspect is sent back to the annotators.
    result = requeue(s, [Suspect(sha256=w.sha(2), given_wnid=w.a.wnid)])
    assert result.requeued
    exact_equals_kept(s)

    # Takedowns of each kind; the shared picture leaves both synsets.
    before = exact_equals_kept(s)
    by_sha = add_takedown(s, kind="sha256", value=w.sha(3), reason="asked")
    kept = exact_equals_kept(s)
    assert kept[w.a.id].counts["clean"] == before[w.a.id].counts["clean"] - 1
    assert kept[w.b.id].counts["clean"] == before[w.b.id].counts["clean"] - 1
    by_url = add_takedown(s, kind="url", value="https://ex.org/b2.jpg", reason="asked")
    exact_equals_kept(s)
    by_creator = add_takedown(s, kind="creator", value="alice", reason="asked")
    assert exact_equals_kept(s)[w.a.id].counts["clean"] < kept[w.a.id].counts["clean"]
    # A picture of synset A found again for B at a taken-down URL leaves both.
    before = exact_equals_kept(s)
    late = w.candidate(w.photos[6].read_bytes(), w.b, "https://ex.org/b2.jpg", "dan")
    assert late.image_id == w.cands[6].image_id and s.get(Image, late.image_id).withheld
    assert exact_equals_kept(s)[w.a.id].counts["clean"] == before[w.a.id].counts["clean"] - 1
    for request in (by_sha, by_url, by_creator):
        revoke_takedown(s, request.id, reason="withdrawn")
        exact_equals_kept(s)

    # Reports: open, kept by a curator, removed by a curator.
    image_id = w.cands[4].image_id
    report = Report(image_id=image_id, annotator_id=p[0], reason="offensive")
    s.add(report)
    s.add(Report(image_id=w.cands[5].image_id, annotator_id=p[1], reason="private"))
    exact_equals_kept(s)
    report.resolution = "kept"
    exact_equals_kept(s)
    report.resolution = "removed"
    assert exact_equals_kept(s) and s.get(Image, image_id).withheld

    # Rows removed by hand (nothing in the toolkit deletes them, a script might).
    s.execute(delete(Vote).where(Vote.candidate_id == w.cands[0].id, Vote.annotator_id == p[2]))
    s.execute(delete(Consensus).where(Consensus.candidate_id == w.cands[3].id))
    exact_equals_kept(s)
    assert recount.recount(s) == []


def test_recount_repairs_drift_and_says_what_it_was(session, world) -> None:
    s = session
    exact_equals_kept(s)
    s.execute(insert(SynsetTallyDelta), [{"synset_id": world.a.id, "votes": 5, "clean": -2}])
    drift = {(d.subject, d.counter): (d.kept, d.exact) for d in recount.recount(s)}
    assert drift == {("n01000001", "votes"): (5, 0), ("n01000001", "clean"): (-2, 0)}
    exact_equals_kept(s)
    assert recount.recount(s) == []


def test_a_long_ledger_is_folded_without_changing_a_count(session, world, monkeypatch) -> None:
    s = session
    s.execute(insert(Vote), [{"candidate_id": c.id, "annotator_id": world.people[0].id,
                              "answer": True} for c in world.cands])  # fmt: skip
    before = exact_equals_kept(s)
    assert s.scalar(select(SynsetTallyDelta.id).limit(1)) is not None
    monkeypatch.setattr(tally, "FOLD_AT", 1)
    assert tally.read(s) == before
    assert s.scalar(select(SynsetTallyDelta.id).limit(1)) is None
    assert exact_equals_kept(s) == before


def test_status_recount_says_what_differed_and_repairs_it(cli, settings) -> None:
    seed_decisions(settings.database_url)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        dog = s.scalar(select(Synset.id).where(Synset.wnid == "n02084071"))
        s.execute(insert(SynsetTallyDelta), [{"synset_id": dog, "votes": 5}])
    engine.dispose()
    kept = {r["wnid"]: r for r in json.loads(cli("status", "--json").out)}
    assert kept["n02084071"]["counts"]["votes"] == 5  # what the kept counters say

    result = cli("status", "--recount", "--json")
    assert result.code == 0, result.err
    assert "Recounted: 1 kept counters differed." in result.err
    assert "n02084071 votes: kept 5, exact 0" in result.err
    rows = {r["wnid"]: r for r in json.loads(result.out)}
    assert rows["n02084071"]["counts"]["votes"] == 0
    assert rows["n02084071"]["counts"]["pending"] == 4
    again = cli("status", "--recount")
    assert again.code == 0 and "Recounted: no kept counters differed." in again.err
