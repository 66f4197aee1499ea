"""Issue 19 (5, 7, 9, 10): sessions that end, crowd joins that need the first browser,
attempt limits, report floods, full-match names. Both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from annotator_web.app import SESSION_COOKIE
from synset_builder.db.models import Annotator, LoginFailure, Report, utcnow
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import PASSWORD, Web, csrf_of, make_web

STUDY = "study-42"


def count(web: Web, model: type, *where: object) -> int:
    with session_scope(web.engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def copy_of(web: Web, client: TestClient) -> TestClient:
    """Another browser holding a copy of ``client``'s session cookie (a stolen cookie)."""
    thief = web.client()
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    return thief


def logged_out(client: TestClient) -> bool:
    """Refused everywhere: the API, the vote endpoint and the pages."""
    page = client.get("/task")
    return (
        client.get("/api/me").status_code == 401
        and client.get("/api/tasks/next").status_code == 401
        and client.post("/api/votes", json={"votes": []}).status_code == 401
        and page.status_code == 303
        and page.headers["location"].startswith("/login")
    )


def test_logout_ends_every_copy_of_the_session(web: Web) -> None:
    ann = web.client("ann")
    thief = copy_of(web, ann)
    assert thief.get("/api/me").json()["username"] == "ann"
    token = csrf_of(ann.get("/task").text)
    assert ann.post("/logout", data={"csrf_token": token}).status_code == 303
    assert logged_out(thief)
    # The JSON logout too.
    again = web.client("ann")
    thief = copy_of(web, again)
    assert again.delete("/api/session").json() == {"ok": True}
    assert logged_out(thief)
    # A dead cookie cannot log the account out elsewhere: a fresh login stays in.
    fresh = web.client("ann")
    thief.delete("/api/session")
    assert fresh.get("/api/me").status_code == 200


def test_disable_then_enable_leaves_old_cookies_dead(web: Web) -> None:
    ann, cur = web.client("ann"), web.client("cur")
    kept = copy_of(web, ann)
    with session_scope(web.engine) as s:
        ann_id = s.scalar(select(Annotator.id).where(Annotator.username == "ann"))
    for disabled in ("true", "false"):
        page = cur.get("/dashboard")
        r = cur.post(
            f"/dashboard/annotators/{ann_id}",
            data={"disabled": disabled, "csrf_token": csrf_of(page.text)},
        )
        assert r.status_code == 303
    assert logged_out(ann) and logged_out(kept)
    assert web.client("ann").get("/api/me").status_code == 200  # a new login works


def test_users_commands_end_sessions(web: Web, cli) -> None:
    ann, bob = web.client("ann"), web.client("bob")
    done = cli("users", "add", "ann", "--reset", "--password-stdin", input="a new password\n")
    assert done.code == 0, done.err
    assert logged_out(ann)
    assert web.client("ann", password="a new password").get("/api/me").status_code == 200
    assert cli("users", "disable", "bob").code == 0
    assert cli("users", "enable", "bob").code == 0
    assert logged_out(bob)
    assert web.client("bob").get("/api/me").status_code == 200


def test_cookies_are_secure_over_https_or_when_forced(web: Web) -> None:
    body = {"username": "ann", "password": PASSWORD}
    plain = web.client().post("/api/session", json=body)
    assert "secure" not in plain.headers["set-cookie"].lower()
    https = TestClient(web.client().app, base_url="https://testserver")
    r = https.post("/api/session", json=body)
    assert r.status_code == 200 and "; secure" in r.headers["set-cookie"].lower()
    assert https.get("/api/me").status_code == 200
    forced = Web(web.cfg.with_overrides(web_secure_cookies=True), web.engine, web.seeded)
    r = forced.client().post("/api/session", json=body)
    assert "; secure" in r.headers["set-cookie"].lower()
    forced.close()


def crowd(settings, photos, **overrides: object) -> Web:
    return make_web(settings, photos, n=6, crowd_study_key=STUDY, **overrides)


def test_a_worker_id_alone_does_not_log_in(settings, photos, cli) -> None:
    web = crowd(settings, photos, crowd_pages=1)
    try:
        worker = web.client()
        assert worker.get(f"/join?worker=W1&study={STUDY}").status_code == 303
        items = worker.get("/api/tasks/next?n=3").json()["items"]
        votes = [{"candidate_id": i["candidate_id"], "label": True} for i in items]
        assert worker.post("/api/votes", json={"votes": votes}).json()["accepted"] == 3
        code = worker.get("/api/me").json()["completion_code"]
        assert code
        # Someone else who knows the id (and the study link): refused, no code shown.
        other = web.client()
        r = other.get(f"/join?worker=W1&study={STUDY}")
        assert r.status_code == 403 and "another browser" in r.json()["detail"]
        assert other.get("/api/me").status_code == 401
        assert code not in r.text
        # The researcher lets the worker in from a new browser: the next join claims it.
        done = cli("users", "enable", "crowd-W1", "--new-browser")
        assert done.code == 0, done.err
        assert other.get(f"/join?worker=W1&study={STUDY}").status_code == 303
        assert other.get("/api/me").json()["completion_code"] == code
        assert worker.get(f"/join?worker=W1&study={STUDY}").status_code == 403
    finally:
        web.close()


def test_join_with_a_staff_name_is_a_clear_409(settings, photos) -> None:
    web = crowd(settings, photos)
    try:
        with session_scope(web.engine) as s:
            s.add(Annotator(username="crowd-W7", role="curator"))
        r = web.client().get(f"/join?worker=W7&study={STUDY}")
        assert r.status_code == 409 and "crowd-W7" in r.json()["detail"]
        assert count(web, Annotator, Annotator.worker_id == "W7") == 0
    finally:
        web.close()


def test_joins_and_wrong_study_keys_are_limited_per_address(settings, photos) -> None:
    web = crowd(settings, photos, crowd_join_limit=2, web_login_attempts=3)
    try:
        browser = web.client()
        for worker in ("A1", "A2"):
            assert browser.get(f"/join?worker={worker}&study={STUDY}").status_code == 303
        r = browser.get(f"/join?worker=A3&study={STUDY}")
        assert r.status_code == 429 and "new accounts" in r.json()["detail"]
        assert count(web, Annotator, Annotator.worker_id.is_not(None)) == 2
        # A worker who joined already still gets back in.
        assert browser.get(f"/join?worker=A2&study={STUDY}").status_code == 303
        for _ in range(3):
            assert web.client().get("/join?worker=A1&study=guess").status_code == 403
        r = web.client().get(f"/join?worker=A1&study={STUDY}")
        assert r.status_code == 429 and "study links" in r.json()["detail"]
    finally:
        web.close()


@pytest.mark.parametrize("name", ["crowd-w1\n", "eve\n", "eve\r\n", " eve"])
def test_names_with_a_trailing_newline_are_refused(web: Web, cli, name: str) -> None:
    done = cli("users", "add", name, "--password-stdin", input="long enough\n")
    assert done.code != 0 and "may only hold" in done.err
    assert count(web, Annotator, Annotator.username == name) == 0


def test_worker_id_with_a_trailing_newline_is_refused(settings, photos) -> None:
    web = crowd(settings, photos)
    try:
        r = web.client().get(f"/join?worker=W1%0A&study={STUDY}")
        assert r.status_code == 403 and "worker id" in r.json()["detail"]
        assert count(web, Annotator, Annotator.worker_id.is_not(None)) == 0
    finally:
        web.close()


def test_failures_older_than_the_window_are_pruned(settings, photos) -> None:
    web = make_web(settings, photos, n=1, web_login_window_seconds=60)
    try:
        with session_scope(web.engine) as s:
            old = utcnow() - timedelta(minutes=5)
            s.add_all(LoginFailure(username="ann", address="x", created_at=old) for _ in range(9))
        r = web.client().post("/api/session", json={"username": "ann", "password": "wrong pass"})
        assert r.status_code == 401  # old failures do not count ...
        assert count(web, LoginFailure) == 1  # ... and are gone
    finally:
        web.close()


def test_reports_are_capped_per_hour_and_a_flood_is_dismissed_at_once(
    settings, photos, cli
) -> None:
    web = make_web(settings, photos, n=8, web_reports_per_hour=3)
    try:
        ann, bob = web.client("ann"), web.client("bob")
        items = [i["candidate_id"] for i in ann.get("/api/tasks/next?n=5").json()["items"]]
        answers = [
            ann.post("/api/reports", json={"candidate_id": c, "reason": "offensive"}).status_code
            for c in items
        ]
        assert answers == [200, 200, 200, 429, 429]
        assert count(web, Report) == 3
        # The refused reports took nothing out: ann still holds and answers those items.
        votes = [{"candidate_id": c, "label": True} for c in items[3:]]
        assert ann.post("/api/votes", json={"votes": votes}).json()["accepted"] == 2
        served = {i["candidate_id"] for i in bob.get("/api/tasks/next?n=8").json()["items"]}
        assert served == set(web.seeded.candidate_ids) - set(items[:3])
        votes = [{"candidate_id": c, "label": True} for c in served]
        assert bob.post("/api/votes", json={"votes": votes}).json()["accepted"] == len(served)
        listed = cli("users", "list")
        assert listed.code == 0 and "ann" in listed.out
        ann_line = next(line for line in listed.out.splitlines() if line.startswith("ann "))
        assert ann_line.split()[5] == "3"  # open reports
        shown = cli("users", "reports", "ann")
        assert shown.code == 0 and "3 open report(s)" in shown.out
        done = cli("users", "reports", "ann", "--dismiss")
        assert done.code == 0 and "Dismissed 3" in done.out
        assert count(web, Report, Report.resolution.is_(None)) == 0
        assert count(web, Report) == 3  # kept, marked dismissed
        served = {i["candidate_id"] for i in bob.get("/api/tasks/next?n=8").json()["items"]}
        assert served == set(items[:3])  # back in service
    finally:
        web.close()
