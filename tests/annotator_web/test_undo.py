"""Undo of the last submitted page (POST /api/undo), on SQLite and PostgreSQL.

Two annotators in a team of two vote on the same six items of an initial subset:
the second page decides them (nobody is left to ask), so its undo must put them
back to pending, move its votes to ``vote_undone``, keep the counters equal to a
recount and serve the page again to its annotator.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from synset_builder.consensus import live
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Consensus,
    Gold,
    Lease,
    Unsure,
    Vote,
    VoteUndone,
)
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import (
    Web,
    csrf_of,
    make_web,
    served_ids,
    wait_for_lock_waiters,
)
from tests.tally_check import exact_equals_kept

ITEMS = 6


@pytest.fixture
def team(settings, photos) -> Iterator[Web]:
    w = make_web(settings, photos, n=ITEMS, web_grid_size=ITEMS)
    yield w
    w.close()


def _submit(client: TestClient, ids: list[int], unsure: tuple[int, ...] = ()) -> None:
    votes = [{"candidate_id": c, "label": k % 2 == 0} for k, c in enumerate(ids) if c not in unsure]
    r = client.post("/api/votes", json={"votes": votes, "unsure": list(unsure)})
    assert r.status_code == 200, r.text


def _undo(client: TestClient) -> tuple[int, dict]:
    r = client.post("/api/undo", json={})
    return r.status_code, r.json()


def _decisions(web: Web) -> dict[int, tuple[str, int]]:
    with session_scope(web.engine) as s:
        rows = s.execute(select(Consensus.candidate_id, Consensus.decision, Consensus.n_votes))
        return {cid: (decision, n) for cid, decision, n in rows}


def _votes_of(web: Web, username: str) -> dict[int, bool]:
    with session_scope(web.engine) as s:
        stmt = select(Vote.candidate_id, Vote.answer).join(
            Annotator, Annotator.id == Vote.annotator_id
        )
        return dict(s.execute(stmt.where(Annotator.username == username)).all())


def _answers_of(web: Web, username: str) -> tuple[float, float]:
    """(yes, no) raw answers the annotator's record counts (the one-answer check's)."""
    with session_scope(web.engine) as s:
        stmt = select(AnnotatorQuality.answered_yes, AnnotatorQuality.answered_no).join(
            Annotator, Annotator.id == AnnotatorQuality.annotator_id
        )
        return tuple(s.execute(stmt.where(Annotator.username == username)).one())


def test_undo_takes_back_the_pages_answers(team: Web) -> None:
    """A page undone and answered again counts once toward the always-the-same-answer
    check (it counted twice, so an honest annotator who undid pages looked like one)."""
    bob = team.client("bob")
    ids = served_ids(bob)
    _submit(bob, ids)
    assert _answers_of(team, "bob") == (3.0, 3.0)
    assert _undo(bob)[0] == 200
    assert _answers_of(team, "bob") == (0.0, 0.0)
    assert sorted(served_ids(bob)) == sorted(ids)
    _submit(bob, ids)
    assert _answers_of(team, "bob") == (3.0, 3.0)


def test_undo_moves_the_votes_and_re_decides(team: Web) -> None:
    bob, ann = team.client("bob"), team.client("ann")
    ids = served_ids(bob)
    assert len(ids) == ITEMS
    _submit(bob, ids)
    after_bob = _decisions(team)
    assert {d for d, _ in after_bob.values()} == {"pending"}
    assert served_ids(ann) == ids
    _submit(ann, ids, unsure=(ids[-1],))
    decided = _decisions(team)
    assert all(decided[c][0] != "pending" and decided[c][1] == 2 for c in ids[:-1])
    page_votes = _votes_of(team, "ann")
    with session_scope(team.engine) as s:
        pages_before = s.scalar(select(Annotator.pages_done).where(Annotator.username == "ann"))
        exact_equals_kept(s)

    status, body = _undo(ann)
    assert status == 200, body
    assert body == {"undone": ITEMS - 1, "leased": ITEMS}
    assert _votes_of(team, "ann") == {}
    assert _votes_of(team, "bob") == dict.fromkeys(ids, True) | {
        c: k % 2 == 0 for k, c in enumerate(ids)
    }
    with session_scope(team.engine) as s:
        moved = s.execute(select(VoteUndone.candidate_id, VoteUndone.answer)).all()
        assert dict(moved) == page_votes
        assert s.scalar(select(Unsure.candidate_id)) is None
        me = s.scalar(select(Annotator).where(Annotator.username == "ann"))
        assert me.pages_done == pages_before - 1
        exact_equals_kept(s)
    # Re-decided as a submit decides: back to bob's one vote each, pending.
    assert _decisions(team) == after_bob
    with session_scope(team.engine) as s:  # and a second live pass changes nothing
        live.after_votes(s, ids, config=team.cfg.consensus)
        again = s.execute(select(Consensus.candidate_id, Consensus.decision, Consensus.n_votes))
        assert {c: (d, n) for c, d, n in again} == after_bob
        s.rollback()
    # The page is served again, whole, and can be voted anew.
    assert served_ids(ann) == ids
    _submit(ann, ids)
    assert _votes_of(team, "ann") == {c: k % 2 == 0 for k, c in enumerate(ids)}
    with session_scope(team.engine) as s:
        exact_equals_kept(s)


def test_undo_is_refused_twice_too_late_and_for_others(team: Web) -> None:
    ann, bob = team.client("ann"), team.client("bob")
    status, body = _undo(ann)
    assert status == 409 and body["detail"].startswith("Nothing to undo")
    first = served_ids(ann)
    _submit(ann, first[:3])
    ann.get("/api/tasks/next")  # the next page, held
    second = served_ids(bob)
    _submit(bob, second)
    assert _undo(ann)[0] == 200
    assert _votes_of(team, "bob") != {}  # bob's page is not ann's to undo
    status, body = _undo(ann)
    assert status == 409 and body["detail"].startswith("Your last page was already undone")
    # A later page may be undone; one submitted too long ago may not.
    _submit(ann, served_ids(ann))
    with session_scope(team.engine) as s:
        me = s.scalar(select(Annotator.id).where(Annotator.username == "ann"))
        ago = timedelta(seconds=team.cfg.web.undo_seconds + 1)
        for vote in s.scalars(select(Vote).where(Vote.annotator_id == me)):
            vote.created_at -= ago
        for moved in s.scalars(select(VoteUndone)):  # the clock moved on for all of it
            moved.undone_at -= ago
    status, body = _undo(ann)
    assert status == 409 and body["detail"].startswith(
        "Nothing to undo: you submitted no page in the last"
    )
    assert "\n" not in body["detail"]
    with session_scope(team.engine) as s:
        assert s.scalar(select(VoteUndone.id).where(VoteUndone.annotator_id != me)) is None
        exact_equals_kept(s)


def test_undo_needs_a_login_and_json(team: Web) -> None:
    anonymous = team.client()
    assert anonymous.post("/api/undo", json={}).status_code == 401
    ann = team.client("ann")
    plain = ann.post("/api/undo", content=b"x", headers={"content-type": "text/plain"})
    assert plain.status_code == 415


def test_undo_leases_only_items_nobody_else_took(team: Web) -> None:
    ann = team.client("ann")
    ids = served_ids(ann)
    _submit(ann, ids)
    with session_scope(team.engine) as s:  # bob leased one of them within the minute
        bob_id = s.scalar(select(Annotator.id).where(Annotator.username == "bob"))
        s.execute(
            update(Lease)
            .where(Lease.candidate_id == ids[0])
            .values(annotator_id=bob_id, expires_at=datetime.now(UTC) + timedelta(hours=1))
        )
    status, body = _undo(ann)
    assert status == 200 and body == {"undone": ITEMS, "leased": ITEMS - 1}
    assert served_ids(ann) == ids[1:]


def test_undo_of_a_gold_answer_leaves_the_annotator_counters_exact(team: Web) -> None:
    ann = team.client("ann")
    ids = served_ids(ann)
    with session_scope(team.engine) as s:  # the first item turns out to be gold
        s.add(Gold(candidate_id=ids[0], answer=False))
    _submit(ann, ids)  # answers yes on ids[0]: a wrong gold answer
    assert ann.get("/api/me").json()["gold_accuracy"] == 0.0
    with session_scope(team.engine) as s:
        exact_equals_kept(s)
    assert _undo(ann)[0] == 200
    assert ann.get("/api/me").json()["gold_accuracy"] is None
    with session_scope(team.engine) as s:
        exact_equals_kept(s)


def test_two_undos_at_once_undo_the_page_once(team: Web, backend: str) -> None:
    """PostgreSQL: both requests wait on the page's vote rows (held here); when they are
    let go, one undoes the page and the other finds nothing left to undo."""
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: there is no race to test")
    ann = team.client("ann")
    ids = served_ids(ann)
    _submit(ann, ids)
    tabs = [team.client("ann"), team.client("ann")]  # two tabs of one annotator
    answers: list[int] = []
    with team.engine.connect() as holder:
        holder.execute(select(Vote.id).with_for_update()).all()
        threads = [threading.Thread(target=lambda c=c: answers.append(_undo(c)[0])) for c in tabs]
        for t in threads:
            t.start()
        wait_for_lock_waiters(holder, 2, "the undos")
        holder.rollback()
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers) == [200, 409]
    with session_scope(team.engine) as s:
        assert s.scalar(select(func.count()).select_from(VoteUndone)) == ITEMS
        assert s.scalar(select(func.count()).select_from(Vote)) == 0
        exact_equals_kept(s)


def _undo_button(html: str) -> int | None:
    """The seconds the page's Undo button stays, or None without one."""
    match = re.search(r'id="undo"[^>]*data-left="(\d+)"', html)
    return int(match.group(1)) if match else None


def test_the_page_after_a_submit_offers_undo_until_it_is_used(team: Web) -> None:
    ann = team.client("ann")
    page = ann.get("/task")
    assert _undo_button(page.text) is None
    ids = [int(x) for x in re.findall(r'name="item" value="(\d+)"', page.text)]
    form = {"csrf_token": csrf_of(page.text), "item": ids}
    after = ann.get(ann.post("/task", data=form).headers["location"])
    # Every item is voted on: "all caught up", and the page just sent can still come back.
    assert "All caught up" in after.text
    assert 0 < _undo_button(after.text) <= team.cfg.web.undo_seconds
    assert _undo(ann)[0] == 200
    back = ann.get("/task")
    assert f"Took back {len(ids)} votes" in back.text
    assert sorted(int(x) for x in re.findall(r'name="item" value="(\d+)"', back.text)) == sorted(
        ids
    )
    assert "Took back" not in ann.get("/task").text  # said once


def test_the_page_back_from_an_undo_carries_the_answers_sent(team: Web) -> None:
    """Undo is for fixing a tile or two: the page comes back with its "yes" answers
    marked as they were sent, not reset to "no"."""
    ann = team.client("ann")
    ids = served_ids(ann)
    _submit(ann, ids, unsure=(ids[1],))  # yes on ids[0], ids[2], ids[4]
    assert _undo(ann)[0] == 200
    back = ann.get("/task").text
    marked = re.findall(r'name="yes" value="(\d+)"[^>]*\bchecked\b', back)
    assert sorted(map(int, marked)) == sorted(ids[0::2])
    plain = ann.get("/task").text  # a later fetch does not read vote_undone
    assert re.findall(r'name="yes" value="(\d+)"[^>]*\bchecked\b', plain) == []


def test_undo_turned_off(settings, photos) -> None:
    web = make_web(settings, photos, n=3, web_undo_seconds=0)
    try:
        ann = web.client("ann")
        page = ann.get("/task").text
        ids = [int(x) for x in re.findall(r'name="item" value="(\d+)"', page)]
        ann.post("/task", data={"csrf_token": csrf_of(page), "item": ids})
        assert "Saved 3 votes" in (after := ann.get("/task").text)
        assert _undo_button(after) is None
        status, body = _undo(ann)
        assert status == 409 and body["detail"] == "Undo is turned off on this server."
    finally:
        web.close()
