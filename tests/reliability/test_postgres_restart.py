"""Fault: PostgreSQL stopped (a crash: ``pg_ctl stop -m immediate``) while the app serves.

The app runs under real uvicorn against a throw-away cluster this test owns. During
the outage every request must fail cleanly and quickly: 503 with a message, never a
500 or a hang. Once the database is back, the same server process answers 200
again (idle pooled connections are pinged and replaced, see db.session): no restart of the app.
"""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from synset_builder.config import Settings
from synset_builder.db import migrate
from synset_builder.db.session import make_engine
from tests.annotator_web.webtools import seed
from tests.reliability.live_server import LiveServer
from tests.reliability.pg_cluster import ThrowawayPostgres, available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="PostgreSQL server binaries are not installed"),
]

PATHS = ["/api/me", "/api/synsets", "/api/tasks/next?n=3"]


def _statuses(client: httpx.Client) -> list[httpx.Response]:
    return [client.get(path) for path in PATHS]


def test_database_outage_answers_503_and_recovers(photos, tmp_path) -> None:
    pg = ThrowawayPostgres()
    server: LiveServer | None = None
    try:
        pg.start()
        admin = create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "synset"'))
        admin.dispose()
        cfg = Settings(database_url=pg.url("synset"), data_dir=tmp_path / "data")
        migrate.upgrade(cfg.database_url)
        engine = make_engine(cfg.database_url)
        seed(engine, cfg, photos, n=6)
        engine.dispose()

        server = LiveServer(cfg, tmp_path / "server.log")
        server.start()
        client = server.login("ann", timeout=30)
        assert [r.status_code for r in _statuses(client)] == [200, 200, 200]

        pg.stop("immediate")
        for _ in range(2):  # stale pooled connections first, then refused new ones
            for r in _statuses(client):
                assert r.status_code == 503, (r.status_code, r.text)
                assert "database is unavailable" in r.json()["detail"]
                assert r.headers.get("retry-after")
        page = client.get("/task", headers={"accept": "text/html"})
        assert page.status_code == 503 and "database is unavailable" in page.text

        pg.start()
        answers: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answers = [r.status_code for r in _statuses(client)]
            if answers == [200, 200, 200]:
                break
            assert set(answers) <= {200, 503}, answers
            time.sleep(0.5)
        assert answers == [200, 200, 200]
        assert server.proc is not None and server.proc.poll() is None, "the app restarted"
        client.close()
    finally:
        if server is not None:
            server.stop()
        pg.close()
    assert "Traceback" not in server.output(), server.output()[-4000:]
