"""Helpers for the web tests: a seeded database of real photos, logged-in clients."""

from __future__ import annotations

import functools
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text

from annotator_web.app import create_app
from annotator_web.serving.statements import Statements, build_statements
from synset_builder.accounts import hash_password
from synset_builder.config import Settings
from synset_builder.crawl.store import add_image
from synset_builder.db.models import Annotator, Candidate, Synset, SynsetEdge
from synset_builder.db.session import make_engine, session_scope

# Real Chromium for the browser tests: Debian's, headless, never a downloaded one.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
# The installed command, for tests that run `synset serve` as a user would.
SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")


def launch_chromium(pw):  # type: ignore[no-untyped-def]
    """Headless Chromium from a Playwright handle (``sync_playwright()``)."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


PASSWORD = "correct horse battery"


@functools.cache
def password_hash() -> str:
    """argon2 is slow on purpose; hash the shared test password once per run."""
    return hash_password(PASSWORD)


@dataclass
class Seeded:
    wnid: str
    candidate_ids: list[int]
    image_ids: list[int]


def seed(
    engine: Engine,
    cfg: Settings,
    photos: list[Path],
    *,
    n: int = 12,
    wnid: str = "n04409515",
    name: str = "whippet",
    gloss: str = "a small slender dog of greyhound type developed in England",
) -> Seeded:
    """dog > hound > NAME with ``n`` real photos as candidates, and three accounts."""
    with session_scope(engine) as s:
        dog = Synset(wnid=f"{wnid[:-1]}1", name="dog", lemmas=["dog"], gloss="a domestic canine")
        hound = Synset(wnid=f"{wnid[:-1]}2", name="hound", lemmas=["hound"], gloss="hunting dog")
        leaf = Synset(wnid=wnid, name=name, lemmas=[name], gloss=gloss, target=True)
        s.add_all([dog, hound, leaf])
        s.flush()
        s.add_all(
            [
                SynsetEdge(parent_id=dog.id, child_id=hound.id),
                SynsetEdge(parent_id=hound.id, child_id=leaf.id),
            ]
        )
        candidate_ids, image_ids = [], []
        for rank, photo in enumerate(photos[:n]):
            image = add_image(s, cfg.data_dir, photo.read_bytes())
            s.flush()
            cand = Candidate(image_id=image.id, synset_id=leaf.id, source="urls", rank=rank)
            s.add(cand)
            s.flush()
            candidate_ids.append(cand.id)
            image_ids.append(image.id)
        for user, role in (("ann", "annotator"), ("bob", "annotator"), ("cur", "curator")):
            s.add(Annotator(username=user, role=role, password_hash=password_hash()))
    return Seeded(wnid=wnid, candidate_ids=candidate_ids, image_ids=image_ids)


def web_settings(settings: Settings, **overrides: object) -> Settings:
    values = {"secret_key": "test-secret", "web_gold_fraction": 0.0, **overrides}
    return settings.with_overrides(**values)


@dataclass
class Web:
    """The app under test, its engine and the seeded data."""

    cfg: Settings
    engine: Engine
    seeded: Seeded
    apps: list[FastAPI] = field(default_factory=list)

    def client(self, user: str | None = None, password: str = PASSWORD) -> TestClient:
        app = create_app(self.cfg)
        self.apps.append(app)
        client = TestClient(app, follow_redirects=False)
        if user is not None:
            r = client.post("/api/session", json={"username": user, "password": password})
            assert r.status_code == 200, r.text
        return client

    @property
    def statements(self) -> Statements:
        """The request path's statements for this database, as ``create_app`` builds them."""
        return build_statements(self.engine)

    def close(self) -> None:
        """Close every connection, so dropping the test database is instant."""
        for app in self.apps:
            app.state.engine.dispose()
        self.engine.dispose()


def make_web(settings: Settings, photos: list[Path], n: int = 12, **overrides: object) -> Web:
    cfg = web_settings(settings, **overrides)
    engine = make_engine(cfg.database_url)
    return Web(cfg=cfg, engine=engine, seeded=seed(engine, cfg, photos, n=n))


def served_ids(client: TestClient) -> list[int]:
    """The candidate ids of the next page ``GET /api/tasks/next`` serves, sorted."""
    r = client.get("/api/tasks/next")
    assert r.status_code == 200, r.text
    return sorted(i["candidate_id"] for i in r.json()["items"])


def wait_for_lock_waiters(conn: Connection, n: int, what: str, timeout: float = 60) -> None:
    """Poll PostgreSQL until ``n`` sessions of this database wait for a lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database()"
    )
    deadline = time.monotonic() + timeout
    while conn.execute(waiting).scalar() < n:
        assert time.monotonic() < deadline, f"{what} never waited for the held rows"
        time.sleep(0.05)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until the server answers; a loaded 2-core machine can take a while to import."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
