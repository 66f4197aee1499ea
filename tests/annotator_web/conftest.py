"""Fixtures: ``web``, a seeded database of real photos and the app on it (both
backends); ``server``, ``synset serve`` on a seeded PostgreSQL database for the
browser tests."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from synset_builder.config import Settings
from synset_builder.db.session import make_engine
from tests.annotator_web.webtools import (
    SYNSET,
    Web,
    free_port,
    make_web,
    seed,
    wait_for_server,
)


@pytest.fixture
def web(settings, photos) -> Iterator[Web]:
    w = make_web(settings, photos, n=12, web_grid_size=5)
    yield w
    w.close()


@pytest.fixture
def server(db_factory, photos, tmp_path) -> Iterator[tuple[str, object]]:
    """``synset serve`` on a seeded PostgreSQL database: (base URL, engine)."""
    cfg = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "data")
    engine = make_engine(cfg.database_url)
    seed(engine, cfg, photos, n=60)
    port = free_port()
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": cfg.database_url,
        "SYNSET_DATA_DIR": str(cfg.data_dir),
        "SYNSET_WEB_GOLD_FRACTION": "0",
    }
    proc = subprocess.Popen([SYNSET, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/login", proc)
        yield base, engine
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        engine.dispose()
