"""``--cluster tcp://HOST:PORT``: a real ``dask scheduler`` and two ``dask worker`` processes.

The scheduler and workers are started as a user starts them, on 127.0.0.1, each in
a folder of its own, and are always taken down at the end. ``synset crawl`` (a URL
list, then Openverse with three queries for one synset, per-synset 30), ``synset
crawl --retry-failed`` and ``synset clean`` run against them into one PostgreSQL
database (given a data folder relative to where the command runs, as a user would),
and as single processes into another; the crawled rows, stored files, retried
failures, clean verdicts, hashes and near-duplicate links must be identical.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from synset_builder.config import Settings
from tests.cluster_support import DaskProcesses, clean_command, clean_state
from tests.crawl_support import (
    cluster_crawl_command,
    cluster_url_rows,
    seed_cluster_targets,
    snapshot,
    url_list,
)
from tests.photo_server import PhotoServer

pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
    if cwd is not None:  # the data folder as a user gives it: relative to where they are
        env = {**env, "SYNSET_DATA_DIR": str(Path(env["SYNSET_DATA_DIR"]).relative_to(cwd))}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]


def test_tcp_cluster_equals_single_process(db_factory, tmp_path: Path) -> None:
    single = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "one")
    spread = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "two")
    for cfg in (single, spread):
        seed_cluster_targets(cfg)
    (tmp_path / "dask").mkdir()

    def single_process(urls: Path, server: PhotoServer) -> None:
        _run(*cluster_crawl_command(single, urls, server))
        _run(*cluster_crawl_command(single, urls, server, "--retry-failed"))
        clean_command(single)

    with PhotoServer(delay=0.01, slow_seconds=1.0) as server, ThreadPoolExecutor(1) as pool:
        urls = url_list(tmp_path / "urls.csv", cluster_url_rows(server))
        # The single-process commands (their own database and folder) run beside the
        # Dask ones, from before the scheduler starts.
        reference = pool.submit(single_process, urls, server)
        with DaskProcesses(tmp_path / "dask", workers=2) as dask:
            assert dask.address.startswith("tcp://127.0.0.1:")
            on_dask = ("--cluster", dask.address)
            _run(*cluster_crawl_command(spread, urls, server, *on_dask), cwd=tmp_path)
            _run(
                *cluster_crawl_command(spread, urls, server, "--retry-failed", *on_dask),
                cwd=tmp_path,
            )
            report = clean_command(spread, *on_dask, cwd=tmp_path)
        reference.result()
    crawled = snapshot(single)
    assert len(crawled["candidates"]) == 90
    assert crawled["failures"] and all(f[3] == 2 for f in crawled["failures"]), "not retried"
    assert snapshot(spread) == crawled
    assert report["hashed"] == len(crawled["images"])
    assert clean_state(spread) == clean_state(single)
