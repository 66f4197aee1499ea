"""What a user sees when a command line is wrong or the disk is full: never a traceback.

Usage errors get click's usage line, its hint and one error line (exit 2); a
failed write gets one line with the path and the reason (exit non-zero), and an
export that could not finish leaves nothing that looks complete. The full disk is
real: a small tmpfs mounted in a private mount namespace (``unshare``), and
``/dev/full`` behind standard output.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from synset_builder.db.models import Export
from synset_builder.db.session import make_engine, session_scope
from tests.export_data import build_collection

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SYNSET, *args], capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("args", "usage", "error"),
    [
        # unknown option (a typo of --depth)
        (["hierarchy", "add", "ant", "--depht", "0"], "synset hierarchy add", "--depht"),
        # unknown command, and unknown sub-command
        (["hierachy", "show"], "synset", "'hierachy'"),
        (["votes", "delete"], "synset votes", "'delete'"),
        # missing argument
        (["export"], "synset export", "Missing argument"),
        # bad values: not a number, and a number out of range
        (["crawl", "--per-synset", "many"], "synset crawl", "--per-synset"),
        (["hierarchy", "add", "ant", "--depth", "-1"], "synset hierarchy add", "--depth"),
    ],
)
def test_usage_errors_print_usage_hint_and_one_error_line(
    args: list[str], usage: str, error: str, tmp_path: Path
) -> None:
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[0].startswith(f"Usage: {usage} "), done.stderr
    assert lines[1] == f"Try '{usage} --help' for help.", done.stderr
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and error in errors[0], done.stderr
    assert len(lines) == 3, done.stderr


def test_full_standard_output_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [SYNSET, "--version"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: standard output: No space left on device."
    ], done.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    """``synset ... | head -1``: the reader left; no line, no traceback, no shutdown noise."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the child writes: its first write gets EPIPE
    try:
        done = subprocess.run(
            [SYNSET, "--help"], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""


def _can_mount_tmpfs(where: Path) -> str | None:
    """Why a private tmpfs cannot be had here, or None when it can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    mount = f"mount -t tmpfs -o size=64k probe {shlex.quote(str(where))}"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True)
    if probe.returncode:
        return probe.stderr.strip() or "mount failed"
    return None


@pytest.mark.slow  # builds a collection and exports it in a subprocess, on both backends
def test_export_onto_a_full_disk_is_one_line_and_leaves_no_complete_export(
    settings, photos, tmp_path: Path
) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        build_collection(session, settings.data_dir, photos, per_class=5)
    disk = tmp_path / "disk"
    disk.mkdir()
    if reason := _can_mount_tmpfs(disk):
        pytest.skip(f"no private tmpfs: {reason}")
    out, kept = disk / "out", tmp_path / "what-was-left"
    # The tmpfs lives as long as the namespace: copy what the export left before it ends.
    script = (
        f"mount -t tmpfs -o size=256k synset-full {shlex.quote(str(disk))} && "
        f"{shlex.quote(SYNSET)} export {shlex.quote(str(out))} --workers 1; "
        f"rc=$?; cp -a {shlex.quote(str(out))} {shlex.quote(str(kept))}; exit $rc"
    )
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": settings.database_url,
        "SYNSET_DATA_DIR": str(settings.data_dir),
    }
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    # One line naming the export folder (or the file in it that failed) and the reason.
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {out}") and line.endswith(": No space left on device."), line
    # Some files were written, but nothing says the export is complete.
    assert any(kept.rglob("*.jpg"))
    assert not (kept / "export.json").exists()
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Export)) == 0
    engine.dispose()
    check = run("verify", str(kept), env=env)
    assert check.returncode != 0 and "OK" not in check.stdout, check.stdout + check.stderr
