"""A fetch or a submit that PostgreSQL picks as a deadlock's victim is run again, not lost.

PostgreSQL breaks a deadlock by aborting one transaction of the cycle. Here a
second connection makes a real one with a submit: it holds the page's consensus
rows, waits until the submit (which has already counted the page on its
annotator's row) waits for them, then asks for that annotator row. The submit's
backend finds the cycle first (this connection's ``deadlock_timeout`` is long)
and is aborted; the app must roll back, run the page again and answer 200 with
every vote recorded once (``db.session.committed``). SQLite runs one writer at a
time and has no deadlocks to retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from synset_builder.db.models import Annotator, Consensus, Vote
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import Web, make_web, served_ids, wait_for_lock_waiters

ITEMS = 6


@pytest.fixture
def team(settings, photos, backend: str) -> Iterator[Web]:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no deadlock to retry")
    w = make_web(settings, photos, n=ITEMS, web_grid_size=ITEMS)
    yield w
    w.close()


def _body(ids: list[int]) -> dict:
    return {"votes": [{"candidate_id": c, "label": True} for c in ids], "unsure": []}


def _votes_of(web: Web, username: str) -> int:
    with session_scope(web.engine) as s:
        stmt = select(func.count()).select_from(Vote).join(Annotator)
        return s.scalar(stmt.where(Annotator.username == username))


def _deadlocks(web: Web) -> int:
    with web.engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
        return conn.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        ).scalar_one()


def test_a_submit_aborted_by_a_deadlock_is_run_again(team: Web) -> None:
    ann, bob = team.client("ann"), team.client("bob")
    ids = served_ids(ann)
    assert ann.post("/api/votes", json=_body(ids)).status_code == 200
    assert served_ids(bob) == ids  # the items still need votes: bob is served the same page
    before = _deadlocks(team)
    answers: list = []
    with team.engine.connect() as holder:
        holder.execute(text("SET deadlock_timeout = '20s'"))  # the submit finds the cycle
        locked = holder.execute(
            select(Consensus.candidate_id).where(Consensus.candidate_id.in_(ids)).with_for_update()
        ).all()
        assert len(locked) == ITEMS, "ann's votes wrote no consensus rows to hold"
        submit = threading.Thread(
            target=lambda: answers.append(bob.post("/api/votes", json=_body(ids)))
        )
        submit.start()
        wait_for_lock_waiters(holder, 1, "the submit")
        # The submit holds bob's row (its page count) and waits for the consensus rows.
        holder.execute(select(Annotator.id).where(Annotator.username == "bob").with_for_update())
        holder.rollback()
    submit.join(timeout=120)
    assert answers, "the submit never answered"
    r = answers[0]
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == ITEMS
    assert _votes_of(team, "bob") == ITEMS
    deadline = time.monotonic() + 10
    while _deadlocks(team) <= before:  # the statistics arrive a moment later
        assert time.monotonic() < deadline, "no deadlock happened: the test proved nothing"
        time.sleep(0.2)


def test_a_submit_that_keeps_deadlocking_writes_nothing(team: Web) -> None:
    """After the last attempt the annotator gets a 503 and no vote was half-written."""
    with team.engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE deadlock_tries"))
        conn.execute(
            text(
                "CREATE FUNCTION always_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN PERFORM nextval('deadlock_tries');"
                " RAISE EXCEPTION 'test deadlock' USING ERRCODE = 'deadlock_detected'; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER always_deadlock BEFORE INSERT ON vote"
                " FOR EACH STATEMENT EXECUTE FUNCTION always_deadlock()"
            )
        )
    bob = team.client("bob")
    ids = served_ids(bob)
    r = bob.post("/api/votes", json=_body(ids))
    assert r.status_code == 503, r.text
    assert _votes_of(team, "bob") == 0
    with team.engine.connect() as conn:  # a sequence's value outlives the rollbacks
        assert conn.execute(text("SELECT last_value FROM deadlock_tries")).scalar_one() == 3


def _deadlock_on_lease(web: Web, times: int) -> None:
    """The first ``times`` lease writes fail as a deadlock's victim would."""
    with web.engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE lease_tries"))
        conn.execute(
            text(
                "CREATE FUNCTION lease_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN IF nextval('lease_tries') <= {times} THEN"
                " RAISE EXCEPTION 'test deadlock' USING ERRCODE = 'deadlock_detected';"
                " END IF; RETURN NULL; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER lease_deadlock BEFORE INSERT ON lease"
                " FOR EACH STATEMENT EXECUTE FUNCTION lease_deadlock()"
            )
        )


def test_a_fetch_whose_lease_deadlocks_is_run_again(team: Web) -> None:
    """Fetches lease items in one statement each; one that PostgreSQL aborts (two
    annotators grabbing the last open items) is run again, for the API and the page."""
    _deadlock_on_lease(team, 2)
    bob = team.client("bob")
    assert served_ids(bob) == sorted(team.seeded.candidate_ids)  # the API's fetch
    ann = team.client("ann")
    r = ann.get("/task")  # the HTML page's fetch
    assert r.status_code == 200, r.text
    with team.engine.connect() as conn:
        assert conn.execute(text("SELECT last_value FROM lease_tries")).scalar_one() >= 4


def test_a_fetch_that_keeps_deadlocking_answers_503(team: Web) -> None:
    _deadlock_on_lease(team, 1000)
    r = team.client("bob").get("/api/tasks/next")
    assert r.status_code == 503, r.text
