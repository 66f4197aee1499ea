"""Helpers for the Dask tests: a real scheduler and workers, and the clean stage's rows.

:class:`DaskProcesses` runs ``dask scheduler`` and ``dask worker`` as the commands a
user types, on 127.0.0.1, each in its own process group, and always takes them down
again (SIGTERM, then SIGKILL), within bounded waits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from synset_builder.config import Settings
from synset_builder.db.models import Candidate, Image, ImageHash, Synset
from synset_builder.db.session import make_engine, session_scope

BIN = Path(sys.executable).parent
START_TIMEOUT = 60.0


class DaskProcesses:
    """``with DaskProcesses(tmp_path, workers=2) as dask: dask.address``."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.folder = folder
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True
            )
        )
        log.close()

    def _wait(self, what: str, ready: object) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():  # type: ignore[operator]
            dead = [p.args for p in self.procs if p.poll() is not None]
            assert not dead, f"{dead} exited while waiting for {what}: {self.logs()}"
            assert time.monotonic() < deadline, f"no {what} after {START_TIMEOUT} s: {self.logs()}"
            time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.folder.glob("*.log")))

    def __enter__(self) -> DaskProcesses:
        self.scheduler_file = self.folder / "scheduler.json"
        try:
            self._start(
                "scheduler",
                [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--no-dashboard", "--scheduler-file", str(self.scheduler_file)],
            )  # fmt: skip
            self._wait("scheduler file", lambda: self.scheduler_file.is_file())
            self._wait("scheduler address", lambda: "address" in self.scheduler_file.read_text())
            self.address = json.loads(self.scheduler_file.read_text())["address"]
            for n in range(self.workers):
                self._start(
                    f"worker{n}",
                    [str(BIN / "dask"), "worker", self.address, "--nthreads", "1",
                     "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{n}",
                     "--local-directory", str(self.folder)],
                )  # fmt: skip
            self._wait(f"{self.workers} workers", self.connected)
        except BaseException:
            self.close()
            raise
        return self

    def connected(self) -> bool:
        """All workers registered with the scheduler (asked over its own protocol)."""
        from distributed import Client

        with Client(self.address, timeout="10s") as client:
            return len(client.scheduler_info()["workers"]) >= self.workers

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.close()


def clean_command(cfg: Settings, *extra: str, cwd: Path | None = None) -> dict:
    """``synset clean --json`` as a subprocess; its JSON summary.

    With ``cwd`` the command runs there and is given the data folder relative to it.
    """
    data_dir = cfg.data_dir.relative_to(cwd) if cwd else cfg.data_dir
    env = {**os.environ, "SYNSET_DATABASE_URL": cfg.database_url,
           "SYNSET_DATA_DIR": str(data_dir)}  # fmt: skip
    done = subprocess.run(
        [str(BIN / "synset"), "clean", "--json", *extra],
        env=env, capture_output=True, text=True, timeout=240, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def clean_state(cfg: Settings) -> dict[str, list]:
    """What the clean stage decided, keyed by sha256 and wnid instead of row ids."""
    engine = make_engine(cfg.database_url)
    try:
        with session_scope(engine) as s:
            sha = dict(s.execute(select(Image.id, Image.sha256)).all())
            wnid = dict(s.execute(select(Synset.id, Synset.wnid)).all())
            cand_key = {
                c.id: (wnid[c.synset_id], sha[c.image_id]) for c in s.scalars(select(Candidate))
            }
            images = sorted(
                (i.sha256, i.quality, i.quality_reason, i.phash, i.greyscale,
                 round(i.sharpness or 0, 6), i.reference_match)
                for i in s.scalars(select(Image))
            )  # fmt: skip
            hashes = sorted(
                (sha[h.image_id], h.algo, h.full, h.crop90, h.crop80, h.mirror)
                for h in s.scalars(select(ImageHash))
            )
            cands = sorted(
                (*cand_key[c.id], cand_key.get(c.near_duplicate_of))
                for c in s.scalars(select(Candidate))
            )
    finally:
        engine.dispose()
    return {"images": images, "hashes": hashes, "candidates": cands}
