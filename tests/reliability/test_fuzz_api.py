"""Fault: the JSON API fuzzed by schemathesis from /openapi.json against real uvicorn.

Logged in as an annotator (the session cookie sent with every request), every
operation under /api/ gets a bounded number of generated requests, valid and
invalid in shape, and about half of the JSON bodies are not JSON at all (NaN,
Infinity, 1e999, cut short, bad UTF-8: tests/reliability/fuzz_hooks.py); the check
is that none answers 5xx and the server logs no traceback. The run is bounded by
its example count (the coverage phase, then up to 15 generated requests an operation,
seeded: about 450 requests), not by a time budget: with ``--max-time`` schemathesis
repeats fuzzing until the budget is spent, which made this test take the whole 20 s
however fast the server answered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synset_builder.config import Settings
from synset_builder.db.session import make_engine
from tests.annotator_web.webtools import seed
from tests.reliability.live_server import LiveServer

SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")
ROOT = Path(__file__).resolve().parents[2]

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
                # Logging out ends every session of the account (issue 19.7), and the
                # fuzzer sends one cookie throughout: everything after would be a 401.
                "--exclude-name",
                "DELETE /api/session",
                "--max-examples",
                "15",
                "--request-timeout",
                "10",
                "--seed",
                "10",
                "--workers",
                "1",
                "--no-color",
                "--report",
                "har",
                "--report-har-path",
                str(tmp_path / "requests.har"),
            ],
            capture_output=True,
            text=True,
            timeout=150,
            cwd=tmp_path,  # schemathesis keeps a .schemathesis/ cache in its working folder
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.reliability.fuzz_hooks",
                "PYTHONPATH": str(ROOT),
            },
        )
    finally:
        server.stop()
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "operations" in run.stdout.lower() or "passed" in run.stdout.lower(), report
    assert "Traceback" not in server.output(), server.output()[-4000:]
    # The bent bodies were sent, and answered as the caller's mistake.
    sent = [
        (entry["request"].get("postData", {}).get("text", ""), entry["response"]["status"])
        for entry in json.loads((tmp_path / "requests.har").read_text())["log"]["entries"]
    ]
    non_finite = [status for body, status in sent if "NaN" in body or "Infinity" in body]
    # Each is the caller's mistake (a 4xx: 422 from the guard, or an earlier refusal
    # such as 401/403 for the caller, 405 for the method, 415 for the type), and the
    # guard itself answered some of them.
    assert non_finite and all(400 <= s < 500 for s in non_finite), sent[:20]
    assert 422 in non_finite, sent[:20]
