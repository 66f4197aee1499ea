"""Fault: a crawl SIGKILLed at three random points, then completed.

Extends tests/synset_builder/test_crawl_resume.py from one kill to three: each run
is killed once the candidate count has grown by a random amount past the last
kill (seeded, so a failure can be replayed), then a final run completes. The final
database, store and failure records must equal an uninterrupted crawl's, with no
temporary files left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from synset_builder.config import Settings
from tests.crawl_support import snapshot, url_list
from tests.photo_server import PhotoServer
from tests.synset_builder.test_crawl_resume import _candidates, _command, _seed

pytestmark = pytest.mark.slow

KILLS = 3
SEED = int(os.environ.get("SYNSET_FAULT_SEED", "20261123"))


def _kill_after_growth(args: list[str], env: dict[str, str], cfg: Settings, target: int) -> int:
    """Start the crawl, SIGKILL it once ``target`` candidates exist; the count at the kill."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _candidates(cfg) < target and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "finished too early"
        time.sleep(0.02)
    assert proc.poll() is None, "the crawl finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return _candidates(cfg)


def test_three_sigkills_then_complete_equals_uninterrupted(db_factory, tmp_path: Path) -> None:
    # PostgreSQL only: the single-kill test beside the crawl tests covers both backends.
    backend = "postgresql"
    settings = Settings(database_url=db_factory.migrated(backend), data_dir=tmp_path / "data")
    rng = random.Random(SEED)
    # Slow photos (0.25 s each): the crawl flushes once a second, so kills land mid-way.
    with PhotoServer(delay=0.25) as server:
        names = server.names
        rows = []
        for i, name in enumerate(names):
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

        args, env = _command(settings, urls)
        counts = [0]
        for _ in range(KILLS):
            counts.append(_kill_after_growth(args, env, settings, counts[-1] + rng.randint(4, 14)))
        assert counts == sorted(counts) and counts[-1] < 80, counts
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

        args, env = _command(other, urls)
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    resumed, straight = snapshot(settings), snapshot(other)
    assert resumed["tmp"] == [] and straight["tmp"] == []
    assert len(straight["candidates"]) == 30 + 30 + 20
    assert resumed == straight
