"""Download worker processes (``CrawlConfig.processes``): same crawl, lighter workers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from synset_builder.config import Settings
from synset_builder.crawl.workers import WorkerFailed
from tests.crawl_support import (
    resume_url_rows,
    run_crawl,
    seed_resume_targets,
    snapshot,
    url_list,
)
from tests.photo_server import PhotoServer

HEAVY = ("sqlalchemy", "synset_builder.db", "synset_builder.config", "pydantic", "requests", "tqdm")


def test_a_worker_imports_no_database_layer() -> None:
    """Each worker process imports this path; the driver's heavy modules stay out of it."""
    code = (
        "import sys; import synset_builder.crawl.workers; "
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_worker_processes_leave_what_one_process_leaves(
    settings: Settings, db_factory, backend: str, tmp_path: Path
) -> None:
    """Quotas, duplicates, redirects, 404s and an HTML page: rows and files alike."""
    other = Settings(database_url=db_factory.migrated(backend), data_dir=tmp_path / "other")
    fetch = {"allow_private": True, "retries": 0, "per_host": 4}
    with PhotoServer() as server:
        urls = url_list(tmp_path / "urls.csv", resume_url_rows(server))
        for cfg, processes in ((settings, 2), (other, 1)):
            seed_resume_targets(cfg)
            run_crawl(
                cfg, [f"urls:{urls}"], fetch=fetch, per_synset=30, concurrency=8,
                processes=processes,
            )  # fmt: skip
    workers, threads = snapshot(settings), snapshot(other)
    assert len(threads["candidates"]) == 30 + 30 + 20
    assert {f[2] for f in threads["failures"]} == {"http_404"}
    assert workers == threads


def _kill_a_worker(stop: threading.Event) -> None:
    """SIGKILL the first download worker this process starts."""
    me = psutil.Process()
    while not stop.is_set():
        for child in me.children():
            try:
                if "crawl.workers" in " ".join(child.cmdline()):
                    time.sleep(0.3)  # let it take some downloads first
                    child.kill()
                    return
            except psutil.Error:
                continue
        time.sleep(0.02)


def test_a_dead_worker_stops_the_crawl_and_leaves_no_process(
    settings: Settings, tmp_path: Path
) -> None:
    seed_resume_targets(settings)
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_worker, args=(stop,), daemon=True)
    with PhotoServer(delay=0.05) as server:
        urls = url_list(tmp_path / "urls.csv", resume_url_rows(server))
        killer.start()
        try:
            with pytest.raises(WorkerFailed, match="exited"):
                run_crawl(
                    settings, [f"urls:{urls}"], fetch={"allow_private": True}, concurrency=4,
                    processes=2,
                )  # fmt: skip
        finally:
            stop.set()
            killer.join(5)
    assert not [c for c in psutil.Process().children() if "crawl.workers" in " ".join(c.cmdline())]
