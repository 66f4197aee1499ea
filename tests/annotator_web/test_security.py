"""Bad input and abuse: every rule of the issue, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from synset_builder.db.models import Annotator, Gold, LoginFailure, Synset, Vote
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import PASSWORD, Web, csrf_of, make_web


def count(web: Web, model: type) -> int:
    with session_scope(web.engine) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_anonymous_pages_redirect_to_login_and_api_answers_401(web: Web) -> None:
    anon = web.client()
    for path in ("/task", "/dashboard", "/"):
        r = anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    for path in (
        "/api/tasks/next",
        "/api/me",
        "/api/synsets",
        f"/img/{web.seeded.image_ids[0]}/thumb",
    ):
        assert anon.get(path).status_code == 401
    r = anon.post("/api/votes", json={"votes": [{"candidate_id": 1, "label": True}]})
    assert r.status_code == 401 and count(web, Vote) == 0


def test_annotator_on_curator_routes_gets_403(web: Web) -> None:
    ann = web.client("ann")
    assert ann.get("/dashboard").status_code == 403
    assert ann.get("/dashboard/votes.csv").status_code == 403
    token = csrf_of(ann.get("/task").text)
    with session_scope(web.engine) as s:
        bob = s.scalar(select(Annotator.id).where(Annotator.username == "bob"))
    r = ann.post(f"/dashboard/annotators/{bob}", data={"disabled": "true", "csrf_token": token})
    assert r.status_code == 403
    r = ann.post("/dashboard/gold", data={"candidate_id": 1, "answer": "true", "csrf_token": token})
    assert r.status_code == 403 and count(web, Gold) == 0
    assert web.client("cur").get("/dashboard").status_code == 200


def test_form_posts_need_the_right_csrf_token(web: Web) -> None:
    ann = web.client("ann")
    page = ann.get("/task").text
    ids = [int(i) for i in __import__("re").findall(r'name="item" value="(\d+)"', page)]
    for token in (None, "wrong-token"):
        data = {"item": ids, "yes": ids}
        if token:
            data["csrf_token"] = token
        assert ann.post("/task", data=data).status_code == 403
    assert count(web, Vote) == 0
    # A token from another session is no good either.
    other = csrf_of(web.client("bob").get("/task").text)
    assert ann.post("/task", data={"item": ids, "csrf_token": other}).status_code == 403
    assert ann.post("/task", data={"item": ids, "csrf_token": csrf_of(page)}).status_code == 303
    assert count(web, Vote) == len(ids)
    # The login form too.
    anon = web.client()
    r = anon.post("/login", data={"username": "ann", "password": PASSWORD})
    assert r.status_code == 403


def test_login_form_sets_a_safe_cookie_and_logout_clears_it(web: Web) -> None:
    anon = web.client()
    form = anon.get("/login?next=/task")
    r = anon.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "next": "//evil.example/x",
              "csrf_token": csrf_of(form.text)},
    )  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert anon.get("/api/me").json()["username"] == "ann"
    token = csrf_of(anon.get("/task").text)
    assert anon.post("/logout", data={"csrf_token": token}).status_code == 303
    assert anon.get("/api/me").status_code == 401


@pytest.mark.slow  # two dozen argon2 checks, slow on purpose
def test_failed_logins_are_rate_limited_per_account_and_address(settings, photos) -> None:
    web = make_web(settings, photos, n=1, web_login_attempts=3)
    try:
        client = web.client()
        for _ in range(5):  # successful logins never count
            assert (
                client.post(
                    "/api/session", json={"username": "ann", "password": PASSWORD}
                ).status_code
                == 200
            )
        for _ in range(3):
            r = client.post("/api/session", json={"username": "ann", "password": "wrong pass"})
            assert r.status_code == 401
        r = client.post("/api/session", json={"username": "ann", "password": PASSWORD})
        assert r.status_code == 429 and "Too many failed logins" in r.json()["detail"]
        # Another account from the same address still works, until the address is limited.
        assert (
            client.post("/api/session", json={"username": "bob", "password": PASSWORD}).status_code
            == 200
        )
        for k in range(9):
            client.post("/api/session", json={"username": f"nobody{k}", "password": "guessing!"})
        assert count(web, LoginFailure) == 12
        r = client.post("/api/session", json={"username": "bob", "password": PASSWORD})
        assert r.status_code == 429
        # The form answers 429 with the same sentence.
        anon = web.client()
        form = anon.get("/login")
        r = anon.post(
            "/login",
            data={"username": "ann", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        )
        assert r.status_code == 429 and "Too many failed logins" in r.text
    finally:
        web.close()


def test_disabled_annotator_is_logged_out_and_cannot_log_in(web: Web) -> None:
    ann, cur = web.client("ann"), web.client("cur")
    assert ann.get("/api/me").status_code == 200
    items = ann.get("/api/tasks/next").json()["items"]
    assert items
    page = cur.get("/dashboard")
    with session_scope(web.engine) as s:
        ann_id = s.scalar(select(Annotator.id).where(Annotator.username == "ann"))
    r = cur.post(
        f"/dashboard/annotators/{ann_id}",
        data={"disabled": "true", "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 303
    votes = [{"candidate_id": i["candidate_id"], "label": True} for i in items]
    assert ann.post("/api/votes", json={"votes": votes}).status_code == 401
    assert count(web, Vote) == 0
    assert ann.get("/api/me").status_code == 401
    r = web.client().post("/api/session", json={"username": "ann", "password": PASSWORD})
    assert r.status_code == 401


def test_script_in_gloss_and_name_shows_as_text(web: Web) -> None:
    with session_scope(web.engine) as s:
        synset = s.scalar(select(Synset).where(Synset.wnid == web.seeded.wnid))
        synset.name = "<script>alert('name')</script>"
        synset.gloss = 'evil <script>alert("gloss")</script> & "quotes"'
    for client, path in ((web.client("ann"), "/task"), (web.client("cur"), "/dashboard")):
        html = client.get(path).text
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(" in html


def test_body_over_the_limit_is_413(settings, photos) -> None:
    web = make_web(settings, photos, n=1, web_max_body_bytes=4096)
    try:
        ann = web.client("ann")
        big = {"votes": [{"candidate_id": i, "label": True} for i in range(400)]}
        r = ann.post("/api/votes", json=big)
        assert r.status_code == 413
        # Streamed without a declared length: refused as well.
        chunks = (b"x" * 1024 for _ in range(10))
        r = ann.post("/api/votes", content=chunks, headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert count(web, Vote) == 0
    finally:
        web.close()


def test_malformed_json_is_422_with_a_message_and_other_types_415(web: Web) -> None:
    ann = web.client("ann")
    r = ann.post("/api/votes", content=b'{"votes": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "Invalid request" in r.json()["detail"]
    r = ann.post("/api/votes", json={"votes": [{"candidate_id": "x", "label": "maybe"}]})
    assert r.status_code == 422 and "candidate_id" in r.json()["detail"]
    r = ann.post(
        "/api/votes",
        content=b"votes=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415
    assert count(web, Vote) == 0


def test_crowd_worker_joins_by_link_and_gets_a_completion_code(settings, photos) -> None:
    web = make_web(settings, photos, n=6, crowd_study_key="study-42", crowd_pages=2)
    try:
        anon = web.client()
        assert anon.get("/join?worker=W123&study=wrong").status_code == 403
        assert anon.get("/join?worker=bad%20id!&study=study-42").status_code == 403
        r = anon.get("/join?worker=W123&study=study-42")
        assert r.status_code == 303 and r.headers["location"] == "/task"
        me = anon.get("/api/me").json()
        assert me["username"] == "crowd-W123" and me["completion_code"] is None
        for _ in range(2):
            items = anon.get("/api/tasks/next?n=3").json()["items"]
            votes = [{"candidate_id": i["candidate_id"], "label": True} for i in items]
            assert anon.post("/api/votes", json={"votes": votes}).json()["accepted"] == 3
        code = anon.get("/api/me").json()["completion_code"]
        assert code and len(code) >= 8
        assert code in anon.get("/task").text
        # The same worker, back in the same browser later, comes back to the same account.
        anon.cookies.delete("synset_session")
        assert anon.get("/api/me").status_code == 401
        assert anon.get("/join?worker=W123&study=study-42").status_code == 303
        assert anon.get("/api/me").json()["completion_code"] == code
    finally:
        web.close()
