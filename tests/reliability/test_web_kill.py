"""Fault: uvicorn SIGKILLed while simulated annotators vote through the JSON API.

Five annotator threads fetch tasks and submit votes; once votes are flowing the
server's process group is SIGKILLed and started again on the same port. Clients
retry a request that got no answer, as a browser would. Checked afterwards:
every vote acknowledged with a 2xx is in the database with its answer, no vote
is stored twice, and nothing is stored that no client sent.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import func, select

from synset_builder.config import Settings
from synset_builder.db.models import Annotator, Vote
from synset_builder.db.session import make_engine, session_scope
from tests.annotator_web.webtools import password_hash, seed
from tests.reliability.live_server import LiveServer

pytestmark = pytest.mark.slow

USERS = ["ann", "bob", "vic", "wes", "zoe"]
ROUNDS = 10  # bounded loop per annotator
PAGE = 5
RETRY_FOR = 150.0  # seconds a client keeps retrying one request through the outage


@dataclass
class Ledger:
    """What the clients sent and what the server acknowledged, per annotator."""

    sent: dict[str, dict[int, bool]] = field(default_factory=dict)
    acked: dict[str, dict[int, bool]] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _with_retry(call, deadline: float, ledger: Ledger) -> httpx.Response:  # noqa: ANN001
    while True:
        try:
            return call()
        except httpx.TransportError as exc:
            ledger.retries.append(repr(exc))
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def annotate(server: LiveServer, user: str, ledger: Ledger) -> None:
    client = server.login(user)
    sent, acked = ledger.sent.setdefault(user, {}), ledger.acked.setdefault(user, {})
    try:
        for _ in range(ROUNDS):
            deadline = time.monotonic() + RETRY_FOR
            r = _with_retry(
                lambda: client.get("/api/tasks/next", params={"n": PAGE}), deadline, ledger
            )
            if r.status_code == 404:
                return
            assert r.status_code == 200, r.text
            ids = [item["candidate_id"] for item in r.json()["items"]]
            if not ids:
                return
            answers = {cid: cid % 3 != 0 for cid in ids}
            with ledger.lock:
                sent.update(answers)
            body = {"votes": [{"candidate_id": c, "label": a} for c, a in answers.items()]}
            r = _with_retry(
                functools.partial(client.post, "/api/votes", json=body), deadline, ledger
            )
            assert r.status_code == 200, r.text
            out = r.json()
            with ledger.lock:
                for cid, answer in answers.items():
                    if cid not in out["refused"]:
                        acked[cid] = answer
                ledger.accepted[user] = ledger.accepted.get(user, 0) + out["accepted"]
    except Exception as exc:  # reported by the test, not lost in the thread
        ledger.errors.append(f"{user}: {exc!r}")
    finally:
        client.close()


def test_acknowledged_votes_survive_a_server_kill(db_factory, photos, tmp_path) -> None:
    cfg = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "data")
    engine = make_engine(cfg.database_url)
    # 20 candidates: the clients stop once every task is done; with 40 the time after
    # the restart grew fourfold (about 55 votes acknowledged now, 15 before the kill).
    seed(engine, cfg, photos, n=20)
    with session_scope(engine) as s:
        for user in USERS[2:]:
            s.add(Annotator(username=user, role="annotator", password_hash=password_hash()))
    server = LiveServer(cfg, tmp_path / "server.log")
    server.start()
    ledger = Ledger()
    threads = [threading.Thread(target=annotate, args=(server, u, ledger)) for u in USERS]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(len(a) for a in ledger.acked.values()) < 15:
            if not any(t.is_alive() for t in threads):
                break
            time.sleep(0.05)
        assert sum(len(a) for a in ledger.acked.values()) >= 15, ledger.errors
        server.kill()
        killed_at = sum(len(a) for a in ledger.acked.values())
        server.start()
        for t in threads:
            t.join(timeout=RETRY_FOR + 60)
        assert not any(t.is_alive() for t in threads), "a client hung"
    finally:
        server.stop()
    assert not ledger.errors, ledger.errors
    assert ledger.retries, "the kill interrupted no request"
    total_acked = sum(len(a) for a in ledger.acked.values())
    assert total_acked > killed_at, "no vote was acknowledged after the restart"

    with session_scope(engine) as s:
        names = dict(s.execute(select(Annotator.id, Annotator.username)).all())
        stored: dict[str, dict[int, bool]] = {}
        for cid, aid, answer in s.execute(
            select(Vote.candidate_id, Vote.annotator_id, Vote.answer)
        ):
            stored.setdefault(names[aid], {})[cid] = answer
        twice = s.execute(
            select(Vote.candidate_id, Vote.annotator_id)
            .group_by(Vote.candidate_id, Vote.annotator_id)
            .having(func.count() > 1)
        ).all()
    engine.dispose()
    assert twice == []
    for user in USERS:
        mine = stored.get(user, {})
        for cid, answer in ledger.acked.get(user, {}).items():
            assert mine.get(cid) == answer, f"acknowledged vote {user}/{cid} lost"
        assert set(mine) <= set(ledger.sent.get(user, {})), f"{user} has votes nobody sent"
        assert ledger.accepted.get(user, 0) <= len(mine)
