"""Two transactions writing at once still leave the kept counters exact (PostgreSQL).

Each test holds one write open in a first transaction, starts a second one that
touches the same item or image from another thread, waits until that one has
either finished or is waiting for a lock (pg_stat_activity, no sleeping), then
commits the first. Without the triggers' locks the second would count from a
state that is already out of date, and the recount would disagree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.orm import Session

from synset_builder.db.models import (
    Annotator,
    Candidate,
    Consensus,
    Image,
    Synset,
    Takedown,
    Vote,
)
from synset_builder.db.session import make_engine
from tests.consensus_data import bare_candidates
from tests.tally_check import exact_equals_kept


@pytest.fixture
def engine(db_url: str, backend: str):
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def race(engine: Engine, first: Callable[[Connection], object],
         second: Callable[[Connection], object]) -> None:  # fmt: skip
    """Run ``first`` and leave it open; run ``second`` in another thread until it is done
    or waits for a lock; commit ``first``, then let ``second`` commit."""
    errors: list[BaseException] = []
    started = threading.Event()
    pid: list[int] = []

    def other() -> None:
        try:
            with engine.begin() as conn:
                pid.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                started.set()
                second(conn)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
            started.set()

    with engine.connect() as watch, engine.begin() as conn:
        first(conn)
        thread = threading.Thread(target=other)
        thread.start()
        started.wait()
        waiting = text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :p")
        while thread.is_alive() and not errors:
            if watch.execute(waiting, {"p": pid[0]}).scalar():
                break
            watch.rollback()
            thread.join(0.01)
    thread.join()
    assert not errors, errors


def new_synset(conn: Connection) -> int:
    return conn.execute(
        insert(Synset).returning(Synset.id), {"wnid": "n07000001", "name": "y", "lemmas": ["y"]}
    ).scalar_one()


def people(engine: Engine, n: int = 2) -> list[int]:
    with engine.begin() as conn:
        return list(
            conn.scalars(
                insert(Annotator).returning(Annotator.id),
                [{"username": f"p{k}", "role": "annotator"} for k in range(n)],
            )
        )


def check(engine: Engine) -> None:
    with Session(engine) as s:
        exact_equals_kept(s)


def test_two_voters_on_one_item_both_count_in_agreement(engine) -> None:
    with engine.begin() as conn:
        _, (item,) = bare_candidates(conn, 1)
    a, b = people(engine)
    race(
        engine,
        lambda c: c.execute(insert(Vote).values(candidate_id=item, annotator_id=a, answer=True)),
        lambda c: c.execute(insert(Vote).values(candidate_id=item, annotator_id=b, answer=False)),
    )
    check(engine)


def test_a_vote_while_its_item_is_decided_counts_against_the_new_decision(engine) -> None:
    with engine.begin() as conn:
        _, (item,) = bare_candidates(conn, 1)
        conn.execute(insert(Consensus).values(candidate_id=item, p_yes=0.5, decision="pending",
                                              method="t"))  # fmt: skip
    (a,) = people(engine, 1)
    decide = update(Consensus).where(Consensus.candidate_id == item).values(decision="accepted")
    race(
        engine,
        lambda c: c.execute(decide),
        lambda c: c.execute(insert(Vote).values(candidate_id=item, annotator_id=a, answer=True)),
    )
    check(engine)


def test_a_new_candidate_of_an_image_being_cleaned_counts_as_clean(engine) -> None:
    with engine.begin() as conn:
        _, (item,) = bare_candidates(conn, 1)
        image = conn.scalar(select(Candidate.image_id).where(Candidate.id == item))
        other = new_synset(conn)
    race(
        engine,
        lambda c: c.execute(update(Image).where(Image.id == image).values(quality="ok")),
        lambda c: c.execute(insert(Candidate).values(image_id=image, synset_id=other, source="t")),
    )
    check(engine)


def test_a_takedown_meets_a_candidate_found_at_its_url_meanwhile(engine) -> None:
    with engine.begin() as conn:
        sid, (item,) = bare_candidates(conn, 1)
        conn.execute(update(Image).values(quality="ok"))
        image = conn.scalar(select(Candidate.image_id).where(Candidate.id == item))
        other = new_synset(conn)
    url = "https://example.org/taken.jpg"
    race(
        engine,
        lambda c: c.execute(insert(Candidate).values(image_id=image, synset_id=other, source="t",
                                                     url=url)),
        lambda c: c.execute(insert(Takedown).values(kind="url", value=url, reason="asked")),
    )  # fmt: skip
    with engine.connect() as conn:
        assert conn.scalar(select(Image.withheld).where(Image.id == image))
    check(engine)
