"""Tasks, leases and votes through the JSON API and the pages, on both backends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from synset_builder.db.models import (
    Candidate,
    Consensus,
    Gold,
    Lease,
    Report,
    Synset,
    Unsure,
    Vote,
    utcnow,
)
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import PASSWORD, Web, csrf_of, make_web


def votes_in_db(web: Web) -> list[tuple[int, int, bool]]:
    with session_scope(web.engine) as s:
        return list(s.execute(select(Vote.candidate_id, Vote.annotator_id, Vote.answer)).all())


def test_next_task_leases_items_of_the_synset(web: Web) -> None:
    ann = web.client("ann")
    r = ann.get("/api/tasks/next", params={"n": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["synset"]["wnid"] == web.seeded.wnid
    assert body["synset"]["name"] == "whippet"
    ids = [i["candidate_id"] for i in body["items"]]
    assert len(ids) == 5 and set(ids) <= set(web.seeded.candidate_ids)
    thumb = ann.get(body["items"][0]["image_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    # A reload gives back the same page instead of leasing more items.
    again = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=5").json()["items"]]
    assert sorted(again) == sorted(ids)
    # Another annotator gets the other items: a leased item is held by one person.
    other = [
        i["candidate_id"] for i in web.client("bob").get("/api/tasks/next?n=12").json()["items"]
    ]
    assert set(other).isdisjoint(ids) and len(other) == 7


def test_an_annotator_stays_on_the_synset_of_their_last_page(web: Web) -> None:
    """With two synsets to serve, each next page comes from the previous page's synset
    while it has items (the server picks among the others only when it runs dry)."""
    with session_scope(web.engine) as s:
        other = Synset(wnid="n09999999", name="other", lemmas=["other"], gloss="g", target=True)
        s.add(other)
        s.flush()
        images = s.scalars(
            select(Candidate.image_id).where(Candidate.id.in_(web.seeded.candidate_ids))
        ).all()
        s.add_all(
            Candidate(image_id=i, synset_id=other.id, source="test", rank=k)
            for k, i in enumerate(images)
        )
    ann = web.client("ann")
    seen = []
    for _ in range(4):
        body = ann.get("/api/tasks/next", params={"n": 2}).json()
        seen.append((body["synset"]["wnid"], body["synset"]["name"], body["synset"]["gloss"]))
        votes = [{"candidate_id": i["candidate_id"], "label": True} for i in body["items"]]
        assert ann.post("/api/votes", json={"votes": votes}).json()["accepted"] == 2
    assert len(set(seen)) == 1, seen
    whippet = (
        web.seeded.wnid,
        "whippet",
        "a small slender dog of greyhound type developed in England",
    )
    assert seen[0] in {("n09999999", "other", "g"), whippet}


def test_votes_are_recorded_once_and_items_never_come_back(web: Web) -> None:
    ann = web.client("ann")
    ids = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=5").json()["items"]]
    votes = [{"candidate_id": c, "label": k % 2 == 0} for k, c in enumerate(ids)]
    first = ann.post("/api/votes", json={"votes": votes})
    assert first.json() == {"accepted": 5, "already": 0, "refused": []}
    again = ann.post("/api/votes", json={"votes": votes})  # back button / retry
    assert again.json() == {"accepted": 0, "already": 5, "refused": []}
    rows = votes_in_db(web)
    assert len(rows) == 5
    assert {(c, a) for c, _, a in rows} == {(v["candidate_id"], v["label"]) for v in votes}
    with session_scope(web.engine) as s:  # the submit updated consensus in its transaction
        counted = dict(s.execute(select(Consensus.candidate_id, Consensus.n_votes)).all())
    assert all(counted[c] == 1 for c in ids)
    later = []
    while items := ann.get("/api/tasks/next?n=5").json()["items"]:
        batch = [i["candidate_id"] for i in items]
        later += batch
        ann.post("/api/votes", json={"votes": [{"candidate_id": c, "label": True} for c in batch]})
    assert set(later).isdisjoint(ids) and len(later) == 7
    me = ann.get("/api/me").json()
    assert me["votes_today"] == 12 and me["votes_total"] == 12


def test_vote_on_unleased_item_is_refused_and_nothing_written(web: Web) -> None:
    ann, bob = web.client("ann"), web.client("bob")
    bob_ids = [i["candidate_id"] for i in bob.get("/api/tasks/next?n=3").json()["items"]]
    unleased = sorted(set(web.seeded.candidate_ids) - set(bob_ids))[0]
    r = ann.post(
        "/api/votes",
        json={"votes": [{"candidate_id": c, "label": True} for c in [*bob_ids, unleased]]},
    )
    assert r.status_code == 200
    assert r.json()["accepted"] == 0 and sorted(r.json()["refused"]) == sorted([*bob_ids, unleased])
    assert votes_in_db(web) == []


def test_vote_on_decided_item_is_refused(web: Web) -> None:
    ann = web.client("ann")
    ids = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=2").json()["items"]]
    with session_scope(web.engine) as s:
        s.add(Consensus(candidate_id=ids[0], p_yes=0.99, decision="accepted", method="test"))
    r = ann.post("/api/votes", json={"votes": [{"candidate_id": c, "label": True} for c in ids]})
    assert r.json() == {"accepted": 1, "already": 0, "refused": [ids[0]]}
    assert [c for c, _, _ in votes_in_db(web)] == [ids[1]]
    # ... and a decided item is never served again.
    served = set()
    while items := ann.get("/api/tasks/next?n=5").json()["items"]:
        batch = [i["candidate_id"] for i in items]
        served |= set(batch)
        ann.post("/api/votes", json={"votes": [{"candidate_id": c, "label": False} for c in batch]})
    assert ids[0] not in served


def test_expired_lease_goes_back_and_old_holder_is_refused(web: Web) -> None:
    ann, bob = web.client("ann"), web.client("bob")
    ids = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=12").json()["items"]]
    assert bob.get("/api/tasks/next?n=5").json()["items"] == []
    with session_scope(web.engine) as s:
        s.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    bob_ids = [i["candidate_id"] for i in bob.get("/api/tasks/next?n=5").json()["items"]]
    assert len(bob_ids) == 5 and set(bob_ids) <= set(ids)
    r = ann.post("/api/votes", json={"votes": [{"candidate_id": c, "label": True} for c in ids]})
    assert r.json()["accepted"] == 7 and sorted(r.json()["refused"]) == sorted(bob_ids)


def test_unsure_items_get_no_vote_and_are_not_shown_again(web: Web) -> None:
    ann = web.client("ann")
    ids = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=3").json()["items"]]
    r = ann.post(
        "/api/votes",
        json={"votes": [{"candidate_id": ids[0], "label": True}], "unsure": ids[1:]},
    )
    assert r.json()["accepted"] == 1
    with session_scope(web.engine) as s:
        assert s.scalar(select(func.count()).select_from(Unsure)) == 2
    nxt = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=12").json()["items"]]
    assert set(nxt).isdisjoint(ids)
    # Someone else can still answer them.
    bob = [i["candidate_id"] for i in web.client("bob").get("/api/tasks/next?n=12").json()["items"]]
    assert set(ids[1:]) <= set(bob)


def test_reported_image_leaves_every_queue_until_a_curator_keeps_it(web: Web) -> None:
    ann, cur = web.client("ann"), web.client("cur")
    first = ann.get("/api/tasks/next?n=1").json()["items"][0]["candidate_id"]
    unseen = max(web.seeded.candidate_ids)
    r = ann.post("/api/reports", json={"candidate_id": unseen, "reason": "offensive"})
    assert r.status_code == 404  # only what was shown to you
    r = ann.post("/api/reports", json={"candidate_id": first, "reason": "boring"})
    assert r.status_code == 422
    r = ann.post("/api/reports", json={"candidate_id": first, "reason": "private"})
    assert r.status_code == 200
    bob = web.client("bob")
    assert first not in [i["candidate_id"] for i in bob.get("/api/tasks/next?n=12").json()["items"]]
    page = cur.get("/dashboard")
    assert "private" in page.text
    with session_scope(web.engine) as s:
        report_id = s.scalar(select(Report.id))
    kept = cur.post(
        f"/dashboard/reports/{report_id}",
        data={"resolution": "kept", "csrf_token": csrf_of(page.text)},
    )
    assert kept.status_code == 303
    assert first in [
        i["candidate_id"] for i in web.client("cur").get("/api/tasks/next?n=12").json()["items"]
    ]


def test_gold_items_are_mixed_in_and_scored(settings, photos) -> None:
    web = make_web(settings, photos, n=10, web_gold_fraction=0.5)
    try:
        gold_ids = web.seeded.candidate_ids[:4]
        with session_scope(web.engine) as s:
            s.add_all([Gold(candidate_id=c, answer=True) for c in gold_ids])
        ann = web.client("ann")
        items = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=4").json()["items"]]
        assert len(items) == 4
        assert 1 <= len(set(items) & set(gold_ids)) <= 3
        ann.post("/api/votes", json={"votes": [{"candidate_id": c, "label": False} for c in items]})
        me = ann.get("/api/me").json()
        assert me["gold_answered"] == len(set(items) & set(gold_ids))
        assert me["gold_accuracy"] == 0.0
    finally:
        web.close()


def test_synset_at_its_goal_is_no_longer_served(web: Web) -> None:
    with session_scope(web.engine) as s:
        s.execute(update(Synset).where(Synset.wnid == web.seeded.wnid).values(goal=1))
        s.add(
            Consensus(
                candidate_id=web.seeded.candidate_ids[0], p_yes=1, decision="accepted", method="t"
            )
        )
    body = web.client("ann").get("/api/tasks/next?n=5").json()
    assert body == {"synset": None, "items": []}
    info = web.client("ann").get(f"/api/synsets/{web.seeded.wnid}").json()
    assert info["goal"] == 1 and info["counts"]["accepted"] == 1 and info["progress"] == 1.0


def _accept(web: Web, ids: list[int]) -> None:
    with session_scope(web.engine) as s:
        for c in ids:
            row = s.get(Consensus, c) or Consensus(candidate_id=c, method="t", n_votes=0)
            row.p_yes, row.decision = 1.0, "accepted"
            s.add(row)


def _set_goal(web: Web, goal: int) -> None:
    with session_scope(web.engine) as s:
        s.execute(update(Synset).where(Synset.wnid == web.seeded.wnid).values(goal=goal))


def _page(client) -> dict:  # noqa: ANN001 - a TestClient
    """Fetch a page of 2 and answer it (so the next fetch is not a reload)."""
    body = client.get("/api/tasks/next?n=2").json()
    votes = [{"candidate_id": i["candidate_id"], "label": False} for i in body["items"]]
    if votes:
        assert client.post("/api/votes", json={"votes": votes}).status_code == 200
    return body


def test_goal_answer_is_reused_for_its_seconds_unless_the_goal_changes(settings, photos) -> None:
    """A worker (one app) reuses "below its goal" for ``web_goal_recheck_seconds``
    (the count is ~1 ms per fetch); a curator's new goal is counted at once."""
    web = make_web(settings, photos, n=12, web_goal_recheck_seconds=600)
    try:
        _set_goal(web, 2)
        ann = web.client("ann")
        assert _page(ann)["items"]
        _accept(web, web.seeded.candidate_ids[-2:])  # the goal is reached now
        # Within the recheck time the earlier answer stands: a page more is served.
        assert _page(ann)["items"]
        _set_goal(web, 1)  # a new goal is counted again, at once
        assert _page(ann) == {"synset": None, "items": []}
    finally:
        web.close()


def test_goal_is_counted_on_every_fetch_with_no_recheck_time(settings, photos) -> None:
    web = make_web(settings, photos, n=12, web_goal_recheck_seconds=0)
    try:
        _set_goal(web, 2)
        ann = web.client("ann")
        assert _page(ann)["items"]
        _accept(web, web.seeded.candidate_ids[-2:])
        assert _page(ann) == {"synset": None, "items": []}
    finally:
        web.close()


def test_task_page_submit_records_marked_as_yes_and_rest_as_no(web: Web) -> None:
    ann = web.client("ann")
    page = ann.get("/task")
    assert page.status_code == 200
    assert "whippet" in page.text and "dog" in page.text and "hound" in page.text
    ids = [int(x) for x in __import__("re").findall(r'name="item" value="(\d+)"', page.text)]
    assert len(ids) == 5
    form = {"csrf_token": csrf_of(page.text), "item": ids, "yes": ids[:2], "elapsed_ms": 5000}
    r = ann.post("/task", data=form)
    assert r.status_code == 303 and r.headers["location"] == "/task"
    assert sorted((c, a) for c, _, a in votes_in_db(web)) == sorted(
        [(c, c in ids[:2]) for c in ids]
    )
    assert "Saved 5 votes" in ann.get("/task").text
    again = ann.post("/task", data=form)  # the back button
    assert "That page was already recorded" in ann.get(again.headers["location"]).text
    assert len(votes_in_db(web)) == 5


def test_the_saved_flash_is_said_once_and_never_read_from_the_address(web: Web) -> None:
    """The counts come from the server's flash in the signed cookie: a reload does not
    repeat them, and an address cannot make the page claim votes nobody sent."""
    ann = web.client("ann")
    page = ann.get("/task?saved=999&already=0&undone=23")
    assert "Saved" not in page.text and "Took back" not in page.text
    ids = [int(x) for x in __import__("re").findall(r'name="item" value="(\d+)"', page.text)]
    ann.post("/task", data={"csrf_token": csrf_of(page.text), "item": ids})
    assert "Saved 5 votes" in ann.get("/task").text
    assert "Saved" not in ann.get("/task").text  # the reload


def test_a_script_submit_reads_where_to_go_or_that_the_session_ended(web: Web) -> None:
    """task.js sends the page with Accept: application/json: it gets the next address
    as JSON, and an ended session as a 401 it can say, not the login form's HTML."""
    ann = web.client("ann")
    page = ann.get("/task?synset=" + web.seeded.wnid)
    ids = [int(x) for x in __import__("re").findall(r'name="item" value="(\d+)"', page.text)]
    form = {"csrf_token": csrf_of(page.text), "item": ids, "synset": web.seeded.wnid}
    script = {"Accept": "application/json"}
    ann.delete("/api/session")  # logged out on another device: every session ends
    r = ann.post("/task", data=form, headers=script)
    assert r.status_code == 401
    assert r.json()["detail"].startswith("Your session ended; log in again")
    assert votes_in_db(web) == []
    plain = ann.post("/task", data=form)  # a form without the script: the login form
    assert plain.status_code == 303 and plain.headers["location"].startswith("/login?next=")
    ann.post("/api/session", json={"username": "ann", "password": PASSWORD})
    page = ann.get("/task?synset=" + web.seeded.wnid)
    r = ann.post("/task", data={**form, "csrf_token": csrf_of(page.text)}, headers=script)
    assert r.status_code == 200 and r.json() == {"next": f"/task?synset={web.seeded.wnid}"}
    assert len(votes_in_db(web)) == 5
