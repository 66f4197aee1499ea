"""kill -9 a crawl part-way; running it again must end where an uninterrupted crawl ends."""

from __future__ import annotations

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


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_sigkill_then_rerun_equals_uninterrupted(
    settings: Settings, db_factory, backend: str, tmp_path: Path, processes: int
) -> None:
    """With ``--processes 2`` the driver dies alone: its workers read the end of their pipe."""
    # Slow enough that the first batch commit (after a second) holds only part of
    # the crawl, so the kill lands mid-crawl even when each download is cheap.
    with PhotoServer(delay=0.08) as server:
        urls = url_list(tmp_path / "urls.csv", resume_url_rows(server))
        other = Settings(database_url=db_factory.migrated(backend), data_dir=tmp_path / "other")
        for cfg in (settings, other):
            seed_resume_targets(cfg)

        # Interrupted: kill -9 once some candidates are in, then run again to the end.
        args, env = crawl_command(settings, urls, processes)
        killed_at = kill_when(args, env, settings, 12)
        assert 12 <= killed_at < 80
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

        # Uninterrupted, into another database and data folder.
        args, env = crawl_command(other, urls)
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    resumed, straight = snapshot(settings), snapshot(other)
    assert resumed["tmp"] == [] and straight["tmp"] == []
    assert len(straight["candidates"]) == 30 + 30 + 20
    assert {f[2] for f in straight["failures"]} == {"http_404"}
    assert resumed == straight
