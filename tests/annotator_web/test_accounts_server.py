"""Issue 19.9 and 19.7 against a real ``synset serve`` on 127.0.0.1: parallel wrong
passwords, forged X-Forwarded-For, and a trusted proxy's headers. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from synset_builder.config import Settings
from synset_builder.db.models import LoginFailure
from synset_builder.db.session import make_engine, session_scope
from tests.annotator_web.webtools import PASSWORD, seed
from tests.reliability.live_server import LiveServer

pytestmark = pytest.mark.slow  # starts uvicorn in a subprocess

LIMIT = 5  # SYNSET_WEB_LOGIN_ATTEMPTS: an address gets four times as many


@contextmanager
def live(settings: Settings, photos: list[Path], tmp_path: Path) -> Iterator[LiveServer]:
    engine = make_engine(settings.database_url)
    seed(engine, settings, photos, n=1)
    engine.dispose()
    server = LiveServer(settings, tmp_path / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.output()


def failures(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        n = s.scalar(select(func.count()).select_from(LoginFailure))
    engine.dispose()
    return n


def login(base: str, username: str, password: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    body = {"username": username, "password": password}
    return httpx.post(f"{base}/api/session", json=body, headers=headers, timeout=120).status_code


def test_parallel_wrong_passwords_and_forged_forwarded_for(
    settings, photos, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNSET_WEB_LOGIN_ATTEMPTS", str(LIMIT))
    with live(settings, photos, tmp_path) as server:
        # 40 wrong passwords for one account at once: at most LIMIT are checked.
        with ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(lambda k: login(server.base, "ann", f"wrong {k}"), range(40)))
        assert set(codes) <= {401, 429}
        assert codes.count(401) <= LIMIT
        assert failures(settings) == codes.count(401)
        # The address has 4 * LIMIT failures to spend; a client naming a new address in
        # X-Forwarded-For on every try is still one address (no proxy is trusted).
        left = 4 * LIMIT - codes.count(401)
        codes = [
            login(server.base, f"nobody{k}", "guessing!", forwarded=f"127.0.1.{k}")
            for k in range(left + 3)
        ]
        assert codes == [401] * left + [429] * 3


def test_a_trusted_proxy_names_the_client_and_the_scheme(
    settings, photos, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNSET_WEB_LOGIN_ATTEMPTS", "1")
    monkeypatch.setenv("SYNSET_WEB_TRUSTED_PROXIES", "127.0.0.1")
    with live(settings, photos, tmp_path) as server:
        # Behind the proxy, each client address has its own limit (4 failures here).
        for client in ("127.0.1.1", "127.0.1.2"):
            codes = [login(server.base, f"x{client}-{k}", "guessing!", client) for k in range(5)]
            assert codes == [401] * 4 + [429]
        assert login(server.base, "ann", PASSWORD, "127.0.1.3") == 200
        # The proxy says the browser spoke HTTPS: the cookie is Secure.
        r = httpx.post(
            f"{server.base}/api/session",
            json={"username": "ann", "password": PASSWORD},
            headers={"X-Forwarded-For": "127.0.1.3", "X-Forwarded-Proto": "https"},
            timeout=60,
        )
        assert r.status_code == 200 and "; secure" in r.headers["set-cookie"].lower()
        r = httpx.post(
            f"{server.base}/api/session",
            json={"username": "ann", "password": PASSWORD},
            headers={"X-Forwarded-For": "127.0.1.3"},
            timeout=60,
        )
        assert "secure" not in r.headers["set-cookie"].lower()
