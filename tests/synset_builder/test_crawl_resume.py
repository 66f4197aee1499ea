"""kill -9 a crawl part-way; running it again must end where an uninterrupted crawl ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from synset_builder.config import Settings
from synset_builder.db.models import Candidate
from synset_builder.db.session import make_engine, session_scope
from tests.crawl_support import add_target, snapshot, url_list
from tests.photo_server import PhotoServer

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")


def _seed(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        for wnid, name in (("n01440764", "tench"), ("n01514668", "cock"), ("n02084071", "dog")):
            add_target(session, wnid, name)
    engine.dispose()


def _command(settings: Settings, urls: Path) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": settings.database_url,
        "SYNSET_DATA_DIR": str(settings.data_dir),
        "SYNSET_ALLOW_PRIVATE_NETWORKS": "1",
    }
    args = [SYNSET, "crawl", "--source", f"urls:{urls}", "--per-synset", "30"]
    return [*args, "--concurrency", "4", "--per-host", "4", "--retries", "0", "--quiet"], env


def _candidates(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            return session.scalar(select(func.count()).select_from(Candidate)) or 0
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sigkill_then_rerun_equals_uninterrupted(
    settings: Settings, db_factory, backend: str, tmp_path: Path
) -> None:
    with PhotoServer(delay=0.03) as server:
        names = server.names
        rows = []
        for i, name in enumerate(names):  # tench: every photo, a 404 every tenth
            rows.append(("n01440764", server.url(f"/photos/{name}")))
            if i % 10 == 0:
                rows.append(("n01440764", server.url(f"/missing/{i}.jpg")))
        rows += [("n01514668", server.url(f"/r/1/photos/{n}")) for n in reversed(names)]
        rows += [("n01514668", server.url(p)) for p in ("/same/a.jpg", "/same/b.jpg", "/html.jpg")]
        rows += [("n02084071", server.url(f"/r/2/photos/{n}")) for n in names[40:60]]
        urls = url_list(tmp_path / "urls.csv", rows)

        other = Settings(database_url=db_factory.migrated(backend), data_dir=tmp_path / "other")
        for cfg in (settings, other):
            _seed(cfg)

        # Interrupted: kill -9 once some candidates are in, then run again to the end.
        args, env = _command(settings, urls)
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _candidates(settings) < 12 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        assert proc.poll() is None, "the crawl finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_at = _candidates(settings)
        assert 12 <= killed_at < 80
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

        # Uninterrupted, into another database and data folder.
        args, env = _command(other, urls)
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    resumed, straight = snapshot(settings), snapshot(other)
    assert resumed["tmp"] == [] and straight["tmp"] == []
    assert len(straight["candidates"]) == 30 + 30 + 20
    assert {f[2] for f in straight["failures"]} == {"http_404"}
    assert resumed == straight
