"""Fault: the JSON API fuzzed by schemathesis from /openapi.json against real uvicorn.

Logged in as an annotator (the session cookie sent with every request), every
operation under /api/ gets a bounded number of generated requests, valid and
invalid; the check is that none answers 5xx and the server logs no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from synset_builder.config import Settings
from synset_builder.db.session import make_engine
from tests.annotator_web.webtools import seed
from tests.reliability.live_server import LiveServer

SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")

pytestmark = pytest.mark.slow


def test_fuzzed_api_never_answers_500(db_factory, photos, tmp_path) -> None:
    cfg = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "data")
    engine = make_engine(cfg.database_url)
    seed(engine, cfg, photos, n=12)
    engine.dispose()
    server = LiveServer(cfg, tmp_path / "server.log")
    server.start()
    try:
        client = server.login("ann")
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        client.close()
        run = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{server.base}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                f"Cookie: {cookie}",
                "--include-path-regex",
                "^/api/",
                "--max-examples",
                "15",
                "--max-time",
                "45",
                "--request-timeout",
                "10",
                "--seed",
                "10",
                "--workers",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=150,
            cwd=tmp_path,  # schemathesis keeps a .schemathesis/ cache in its working folder
        )
    finally:
        server.stop()
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "operations" in run.stdout.lower() or "passed" in run.stdout.lower(), report
    assert "Traceback" not in server.output(), server.output()[-4000:]
