"""The web app refits the consensus model by itself (synset_builder/consensus/refit.py).

Votes go through the JSON API of apps built like separate server processes (one
app per annotator, each with its own vote counter); the refit is the real
``python -m synset_builder.cli consensus`` in a child process, on both backends.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, update

from synset_builder.config import Settings
from synset_builder.consensus.refit import STALE, AutoRefit, claim, finish
from synset_builder.db.models import AnnotatorQuality, Consensus, ConsensusRefit, Synset, Vote
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import Web, make_web

EVERY = 20  # votes between refits in these tests: ann's and bob's first pages cross it


@pytest.fixture
def web(settings: Settings, photos: list[Path]) -> Iterator[Web]:
    w = make_web(settings, photos, n=12, consensus_refit_votes=EVERY)
    yield w
    for app in w.apps:
        app.state.refits.join(300)
    w.close()


def refits(engine: Engine) -> list[tuple[int, str, int, str | None]]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(ConsensusRefit.id, ConsensusRefit.status, ConsensusRefit.votes_seen,
                   ConsensusRefit.detail).order_by(ConsensusRefit.id)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]


def settled(
    engine: Engine, count: int = 1, deadline_s: float = 300
) -> list[tuple[int, str, int, str | None]]:
    """The refit rows once ``count`` started and none is running (the check runs after
    the submit's commit, in a thread; a child takes seconds to import and run)."""
    end = time.monotonic() + deadline_s
    while True:
        rows = refits(engine)
        if len(rows) >= count and all(r[1] != "running" for r in rows):
            return rows
        assert time.monotonic() < end, f"a refit still runs after {deadline_s} s: {rows}"
        time.sleep(0.2)


def vote_page(client: TestClient, answer: Callable[[int], bool]) -> int:
    """Fetch a page and answer all of it; the number of votes accepted."""
    task = client.get("/api/tasks/next")
    assert task.status_code == 200, task.text
    items = [item["candidate_id"] for item in task.json()["items"]]
    votes = [{"candidate_id": c, "label": answer(c)} for c in items]
    sent = client.post("/api/votes", json={"votes": votes})
    assert sent.status_code == 200, sent.text
    return sent.json()["accepted"]


def snapshot(engine: Engine) -> tuple[list[tuple], list[tuple], list[float | None]]:
    """Every decision, every voter's record, every prior."""
    with session_scope(engine) as s:
        decisions = s.execute(
            select(Consensus.candidate_id, Consensus.decision, Consensus.p_yes,
                   Consensus.n_votes, Consensus.reason).order_by(Consensus.candidate_id)
        ).all()  # fmt: skip
        records = s.execute(
            select(AnnotatorQuality.annotator_id, AnnotatorQuality.votes, AnnotatorQuality.yy,
                   AnnotatorQuality.nn, AnnotatorQuality.excluded)
            .order_by(AnnotatorQuality.annotator_id)
        ).all()  # fmt: skip
        priors = s.scalars(select(Synset.prior_yes).order_by(Synset.id)).all()
    return [tuple(r) for r in decisions], [tuple(r) for r in records], list(priors)


def yes_on_even(cid: int) -> bool:
    return cid % 2 == 0


def test_votes_through_the_api_start_exactly_one_refit_that_decides_as_synset_consensus(
    web: Web, cli: Callable
) -> None:
    ann, bob = web.client("ann"), web.client("bob")
    cast = vote_page(ann, yes_on_even)
    assert 0 < cast < EVERY, cast
    assert refits(web.engine) == [], "a refit started before enough votes arrived"
    cast += vote_page(bob, yes_on_even)
    assert EVERY <= cast < 2 * EVERY, cast
    rows = settled(web.engine)
    assert len(rows) == 1, rows
    _, status, seen, detail = rows[0]
    assert status == "done", rows
    with session_scope(web.engine) as s:
        assert seen == s.scalar(select(func.max(Vote.id)))
    # The child's own summary: the recompute ran to its end.
    assert (detail or "").startswith("1 synsets, "), detail
    after_refit = snapshot(web.engine)
    again = cli("consensus", "--json")
    assert again.code == 0, again.err
    assert snapshot(web.engine) == after_refit
    shown = cli("consensus", "annotators")
    assert shown.code == 0, shown.err
    assert shown.out.startswith("last refit 1 done"), shown.out
    listed = cli("consensus", "refits", "--json")
    assert listed.code == 0 and '"status": "done"' in listed.out, listed.out


def add_votes(engine: Engine, candidates: list[int], annotator: int) -> None:
    with session_scope(engine) as s:
        s.add_all(
            Vote(candidate_id=c, annotator_id=annotator, answer=True, created_at=datetime.now(UTC))
            for c in candidates
        )


def add_done_refit(
    engine: Engine, *, started: timedelta, ended: timedelta, votes_seen: int = 0
) -> None:
    """A finished refit that started and ended that long ago."""
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        s.execute(
            insert(ConsensusRefit).values(started_at=now - started, finished_at=now - ended,
                                          votes_seen=votes_seen, status="done")
        )  # fmt: skip


def test_a_running_refit_blocks_every_other_start_until_it_ends(web: Web) -> None:
    ids = web.seeded.candidate_ids
    add_votes(web.engine, ids, 1)
    add_votes(web.engine, ids, 2)
    # Processes racing for the due refit: exactly one gets it.
    barrier = threading.Barrier(4)
    got: list[int | None] = []

    def race() -> None:
        barrier.wait()
        got.append(claim(web.engine, EVERY))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [g for g in got if g is not None]
    assert len(got) == 4 and len(winners) == 1, got
    # While it runs, a check that finds a refit due (one new vote is enough here)
    # starts none: the index over running rows refuses the second.
    add_votes(web.engine, ids, 3)
    assert claim(web.engine, 1) is None
    assert AutoRefit(web.cfg, web.engine).check() is None
    assert [r[1] for r in refits(web.engine)] == ["running"]
    # Ended: the next is due EVERY vote ids after the last one's, not before.
    assert finish(web.engine, winners[0], "done", "test")
    assert claim(web.engine, EVERY) is None
    assert claim(web.engine, 1) is not None
    assert [r[1] for r in refits(web.engine)] == ["done", "running"]


def test_a_killed_refit_is_recorded_as_failed_and_the_next_one_starts(
    settings: Settings, photos: list[Path]
) -> None:
    w = make_web(settings, photos, n=12, consensus_refit_votes=10)
    try:
        ann, bob = w.client("ann"), w.client("bob")
        assert vote_page(ann, yes_on_even) >= 10
        # ann's app (a server process) started a refit: kill its child, as an OOM
        # killer would.
        refitter: AutoRefit = w.apps[0].state.refits
        end = time.monotonic() + 60
        while refitter.child is None:
            assert time.monotonic() < end, f"no refit was started: {refits(w.engine)}"
            time.sleep(0.01)
        refitter.child.send_signal(signal.SIGKILL)
        refitter.join(120)
        rows = refits(w.engine)
        assert [r[1] for r in rows] == ["failed"], rows
        assert rows[0][3].startswith("killed by SIGKILL"), rows
        # The next one is due 10 votes after the failed one, and runs to its end.
        assert vote_page(bob, yes_on_even) >= 10
        rows = settled(w.engine, 2)
        assert [r[1] for r in rows] == ["failed", "done"], rows
    finally:
        for app in w.apps:
            app.state.refits.join(300)
        w.close()


def test_a_refit_whose_server_died_is_abandoned_by_the_next_check(web: Web) -> None:
    long_ago = datetime.now(UTC) - STALE - timedelta(minutes=1)
    with session_scope(web.engine) as s:
        s.execute(
            insert(ConsensusRefit).values(started_at=long_ago, heartbeat_at=long_ago,
                                          votes_seen=0, status="running")
        )  # fmt: skip
        s.add_all(
            Vote(candidate_id=c, annotator_id=1, answer=True, created_at=datetime.now(UTC))
            for c in web.seeded.candidate_ids
        )
    new = claim(web.engine, 1)
    assert new is not None
    rows = refits(web.engine)
    assert [r[1] for r in rows] == ["failed", "running"], rows
    assert rows[0][3].startswith("abandoned"), rows
    assert finish(web.engine, new, "done", "test")


def test_a_refit_waits_as_long_as_the_last_one_took(web: Web) -> None:
    add_done_refit(web.engine, started=timedelta(minutes=10), ended=timedelta(minutes=1))
    add_votes(web.engine, web.seeded.candidate_ids, 1)
    # Due by the votes, but the last refit took 9 minutes and ended 1 minute ago.
    assert claim(web.engine, 1) is None
    with session_scope(web.engine) as s:
        s.execute(
            update(ConsensusRefit).values(
                finished_at=datetime.now(UTC) - timedelta(minutes=5, seconds=1)
            )
        )
    assert claim(web.engine, 1) is not None


def test_a_refit_waits_the_minimum_gap_after_the_last_one(web: Web) -> None:
    """Under heavy voting a quick refit is due again at once by the votes; the gap
    keeps refits from running back to back."""
    add_done_refit(web.engine, started=timedelta(seconds=31), ended=timedelta(seconds=30))
    add_votes(web.engine, web.seeded.candidate_ids, 1)
    assert claim(web.engine, 1, timedelta(seconds=60)) is None  # ended 30 s ago
    assert claim(web.engine, 1, timedelta(seconds=20)) is not None


def test_refits_come_at_geometric_steps_of_the_votes(web: Web) -> None:
    """Besides ``every`` new votes, a refit waits for a tenth as many new votes as the
    last one saw: each replays every vote, so a fixed step would cost quadratically."""
    with session_scope(web.engine) as s:
        s.add(Vote(id=1000, candidate_id=web.seeded.candidate_ids[0], annotator_id=1,
                   answer=True, created_at=datetime.now(UTC)))  # fmt: skip
    add_done_refit(web.engine, started=timedelta(hours=2, seconds=1), ended=timedelta(hours=2),
                   votes_seen=951)  # fmt: skip
    assert claim(web.engine, 1) is None  # 49 new votes, under a tenth of 951
    with session_scope(web.engine) as s:
        s.execute(update(ConsensusRefit).values(votes_seen=909))
    assert claim(web.engine, 1) is not None  # 91 new votes: a tenth of 909 and more


def test_refits_are_off_at_zero(settings: Settings, photos: list[Path]) -> None:
    w = make_web(settings, photos, n=12, consensus_refit_votes=0)
    try:
        ann, bob = w.client("ann"), w.client("bob")
        assert vote_page(ann, yes_on_even) + vote_page(bob, yes_on_even) > 0
        for app in w.apps:
            app.state.refits.join(60)
        assert refits(w.engine) == []
    finally:
        w.close()
