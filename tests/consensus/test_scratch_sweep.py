"""A consensus killed mid-refit leaves its scratch folder; the next one removes it.

Real processes, real signals: one child is SIGKILLed inside ``scratch_folder``,
another is still running inside its own when the next folder is made.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from synset_builder.consensus.scratch import PREFIX, _host, scratch_folder

CHILD = """
import sys, time
from pathlib import Path
from synset_builder.consensus.scratch import scratch_folder
with scratch_folder(Path(sys.argv[1])) as folder:
    (folder / "vote_item.bin").write_bytes(b"x" * 4096)
    print(folder, flush=True)
    time.sleep(600)
"""


def _child_in_scratch(parent: Path) -> tuple[subprocess.Popen, Path]:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(parent)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.stdout is not None
    folder = Path(proc.stdout.readline().strip())
    assert folder.is_dir(), "the child should be inside its scratch folder"
    return proc, folder


def test_a_killed_recomputes_folder_is_swept_and_a_live_ones_is_not(tmp_path: Path) -> None:
    killed, orphan = _child_in_scratch(tmp_path)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert orphan.is_dir(), "SIGKILL gives no chance to clean up"
    running, live = _child_in_scratch(tmp_path)
    elsewhere = tmp_path / f"{PREFIX}otherhost-{killed.pid}-abc"  # another host, same pid
    elsewhere.mkdir()
    not_ours = tmp_path / "synset-consensus-notes"
    not_ours.mkdir()
    try:
        with scratch_folder(tmp_path) as mine:
            assert mine.name.startswith(f"{PREFIX}{_host()}-{os.getpid()}-")
            assert not orphan.exists(), "the dead process's folder should be gone"
            assert live.is_dir(), "a running recompute's folder must stay"
            assert elsewhere.is_dir() and not_ours.is_dir()
        assert not mine.exists()
    finally:
        running.kill()
        running.wait(timeout=30)
    # now that one is dead too (reaped by the wait above), the next recompute sweeps it
    with scratch_folder(tmp_path):
        assert not live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([elsewhere.name, not_ours.name])
