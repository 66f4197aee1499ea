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
import subprocess
from pathlib import Path

import pytest

from synset_builder.config import Settings
from tests.crawl_support import (
    crawl_command,
    kill_when,
    resume_url_rows,
    seed_resume_targets,
    snapshot,
    url_list,
)
from tests.photo_server import PhotoServer

pytestmark = pytest.mark.slow

KILLS = 3
SEED = int(os.environ.get("SYNSET_FAULT_SEED", "20261123"))


def test_three_sigkills_then_complete_equals_uninterrupted(db_factory, tmp_path: Path) -> None:
    # PostgreSQL only: the single-kill test beside the crawl tests covers both backends.
    backend = "postgresql"
    settings = Settings(database_url=db_factory.migrated(backend), data_dir=tmp_path / "data")
    rng = random.Random(SEED)
    # Slow photos (0.5 s each): the crawl flushes once a second, so kills land mid-way.
    # At 0.25 s a loaded machine (an fsync of the store taking seconds) once let one
    # flush write the last 30 rows, and the third kill found the crawl done.
    with PhotoServer(delay=0.5) as server:
        urls = url_list(tmp_path / "urls.csv", resume_url_rows(server))
        other = Settings(database_url=db_factory.migrated(backend), data_dir=tmp_path / "other")
        for cfg in (settings, other):
            seed_resume_targets(cfg)

        args, env = crawl_command(settings, urls)
        counts = [0]
        for _ in range(KILLS):
            counts.append(kill_when(args, env, settings, counts[-1] + rng.randint(4, 14)))
        assert counts == sorted(counts) and counts[-1] < 80, counts
        # The runs that are not killed need no slow photos: what they leave does not
        # depend on how fast downloads finish, and at 0.5 s each they took 17 s. The
        # resumed run and the uninterrupted one (into ``other``) run side by side.
        server.delay = 0.0
        runs = [
            subprocess.Popen(a, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for a, e in (crawl_command(settings, urls), crawl_command(other, urls))
        ]
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err

    resumed, straight = snapshot(settings), snapshot(other)
    assert resumed["tmp"] == [] and straight["tmp"] == []
    assert len(straight["candidates"]) == 30 + 30 + 20
    assert resumed == straight
