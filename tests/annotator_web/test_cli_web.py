"""``synset users add``, ``synset gold add`` and ``synset serve`` (a real server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import select

from synset_builder.accounts import authenticate
from synset_builder.db.models import Annotator, Gold
from synset_builder.db.session import make_engine, session_scope
from tests.annotator_web.webtools import free_port, seed, wait_for_server

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")


def test_users_add_hashes_the_password_and_checks_it(cli, settings) -> None:
    done = cli(
        "users", "add", "alice", "--role", "curator", "--password-stdin", input="s3cret-pass\n"
    )
    assert done.code == 0, done.err
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        user = s.scalar(select(Annotator).where(Annotator.username == "alice"))
        assert user.role == "curator" and user.password_hash.startswith("$argon2")
        assert "s3cret-pass" not in user.password_hash
        assert authenticate(s, "alice", "s3cret-pass") is not None
        assert authenticate(s, "alice", "wrong-pass") is None
    engine.dispose()
    short = cli("users", "add", "bob", "--password-stdin", input="short\n")
    assert short.code != 0 and "at least 8 characters" in short.err
    assert len(short.err.strip().splitlines()) == 1
    bad = cli("users", "add", "carol", "--role", "boss", "--password-stdin", input="long enough\n")
    assert bad.code != 0 and "Unknown role" in bad.err


def test_gold_add_reads_a_csv(cli, settings, photos, tmp_path) -> None:
    engine = make_engine(settings.database_url)
    seeded = seed(engine, settings, photos, n=3)
    good = tmp_path / "gold.csv"
    good.write_text(f"item,label\n{seeded.candidate_ids[0]},1\n{seeded.candidate_ids[1]},no\n")
    done = cli("gold", "add", str(good))
    assert done.code == 0, done.err
    assert "2 gold items" in done.out
    with session_scope(engine) as s:
        gold = dict(s.execute(select(Gold.candidate_id, Gold.answer)).all())
    assert gold == {seeded.candidate_ids[0]: True, seeded.candidate_ids[1]: False}
    bad = tmp_path / "bad.csv"
    bad.write_text(f"item,label\n{seeded.candidate_ids[2]},perhaps\n")
    done = cli("gold", "add", str(bad))
    assert done.code != 0 and "Unknown label" in done.err
    with session_scope(engine) as s:
        assert s.scalar(select(Gold).where(Gold.candidate_id == seeded.candidate_ids[2])) is None
    engine.dispose()


@pytest.mark.slow  # starts uvicorn in a subprocess
def test_serve_prints_the_address_and_serves(settings, photos) -> None:
    engine = make_engine(settings.database_url)
    seed(engine, settings, photos, n=2)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": settings.database_url,
        "SYNSET_DATA_DIR": str(settings.data_dir),
    }
    log = settings.data_dir / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen([SYNSET, "serve", "--port", str(port), "--access-log"], env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        wait_for_server(f"http://127.0.0.1:{port}/login", proc)
        r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert r.status_code == 200 and "Log in" in r.text
        assert (settings.data_dir / "secret_key").stat().st_mode & 0o077 == 0
        assert httpx.get(f"http://127.0.0.1:{port}/api/me", timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    # --access-log: a line per request, refusals included (a curator's record of 401s).
    logged = log.read_text()
    assert '"GET /login HTTP/1.1" 200' in logged and '"GET /api/me HTTP/1.1" 401' in logged
