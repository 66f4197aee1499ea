"""A real ``synset serve`` (uvicorn) on 127.0.0.1 that a fault test can kill and restart.

The server runs in its own process group so SIGKILL reaches uvicorn and nothing else;
the signing secret is fixed so a session cookie outlives a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from synset_builder.config import Settings
from tests.annotator_web.webtools import PASSWORD, free_port, wait_for_server

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")


class LiveServer:
    """One uvicorn process serving the annotator app for ``cfg``; restartable on one port."""

    def __init__(self, cfg: Settings, log: Path) -> None:
        self.cfg = cfg
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SYNSET_DATABASE_URL": self.cfg.database_url,
            "SYNSET_DATA_DIR": str(self.cfg.data_dir),
            "SYNSET_WEB_GOLD_FRACTION": "0",
            "SYNSET_SECRET_KEY": "reliability-test-secret",
        }

    def start(self, timeout: float = 120) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [SYNSET, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_server(f"{self.base}/login", self.proc, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the whole server process group: no shutdown handlers run."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def login(self, user: str, timeout: float = 10) -> httpx.Client:
        client = httpx.Client(base_url=self.base, timeout=timeout)
        r = client.post("/api/session", json={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return client

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
