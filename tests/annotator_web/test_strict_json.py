"""JSON bodies with NaN, Infinity or an out-of-range number answer 422 on every route
that takes a body (issue 19, item 8), logged in or not, on both backends; nothing is
written."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from synset_builder.db.models import LoginFailure, Report, Vote
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import Web

BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e400"]


def _routes(routes: list) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.160)
            yield from _routes(route.original_router.routes)


def _posted_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every route, documented or not, that takes a body."""
    found = []
    for route in _routes(client.app.routes):
        path = re.sub(r"\{[^}]*\}", "1", route.path_format)
        found += [(m, path) for m in route.methods if m not in ("GET", "HEAD", "OPTIONS")]
    return found


def _count(web: Web, column) -> int:  # noqa: ANN001 - a mapped column
    with session_scope(web.engine) as s:
        return s.scalar(select(func.count(column)))


def test_non_finite_numbers_are_422_on_every_json_route(web: Web) -> None:
    anon, ann = web.client(), web.client("ann")
    routes = _posted_routes(ann)
    assert {("POST", "/api/session"), ("POST", "/api/votes"), ("POST", "/login")} <= set(routes)
    failures_before = _count(web, LoginFailure.id)
    for method, path in routes:
        for client in (anon, ann):
            for bad in BAD_NUMBERS:
                for body in (
                    f'{{"username": {bad}, "password": "x"}}',
                    f'{{"votes": [{{"candidate_id": {bad}, "label": true}}], "unsure": []}}',
                    f'{{"candidate_id": 1, "reason": "offensive", "extra": [1, {{"x": {bad}}}]}}',
                ):
                    for headers in ({"content-type": "application/json"}, {}):
                        r = client.request(method, path, content=body.encode(), headers=headers)
                        assert r.status_code == 422, (method, path, body, r.text)
                        assert "NaN" in r.json()["detail"]
    assert _count(web, Vote.candidate_id) == 0 and _count(web, Report.id) == 0
    assert _count(web, LoginFailure.id) == failures_before
    # The strings "NaN" and "Infinity", and ordinary numbers, are still fine.
    r = anon.post("/api/session", json={"username": "NaN", "password": "Infinity 1e999"})
    assert r.status_code == 401
    r = ann.post("/api/votes", json={"votes": [], "unsure": [], "elapsed_ms": 1.5e3})
    assert r.status_code == 200


def test_malformed_and_deep_json_keep_the_framework_answer(web: Web) -> None:
    ann = web.client("ann")
    headers = {"content-type": "application/json"}
    r = ann.post("/api/votes", content=b'{"votes": [NaN', headers=headers)
    assert r.status_code == 422
    r = ann.post("/api/votes", content=b"[" * 50000, headers=headers)
    assert r.status_code in (400, 422)
    r = ann.post("/api/votes", content=b"\xff\xfe{", headers=headers)
    assert r.status_code in (400, 422)
