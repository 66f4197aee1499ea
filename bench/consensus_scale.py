"""``synset consensus`` (a full recompute) at ILSVRC scale: time, CPU and peak memory.

Seeds the same shape as ``bench/curator_scale.py`` (``bench/ilsvrc_seed.py``) (1,000 synsets x
1,000 candidates, three votes on 80% of them from 300 annotators, synsets
interleaved as a crowd would vote), then runs ``synset consensus --json`` in a
child process twice: the first run rewrites the seeded decisions, the second
finds nothing changed (what a periodic recompute mostly meets). Prints per run
the wall time, the command's CPU time, its peak RSS (``wait4``) and the database
server's CPU time over the run (``pg_stat_activity`` cannot say; the backends'
``/proc`` counters can, on one machine, sampled while the command runs).

Targets (issue 26): <= 90 s and <= 1 GB, memory bounded whatever the size.

Usage::

    .venv/bin/python bench/consensus_scale.py [--synsets 1000] [--per-synset 1000]
        [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ilsvrc_seed import (  # noqa: E402
    add_shape_arguments,
    drop_database,
    seeded_database,
)

DB_NAME = "synset_bench_consensus"


def postgres_cpu() -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL process on this machine."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def run(url: str, data_dir: Path) -> str:
    """One ``synset consensus``; the database's CPU is sampled while it runs, since
    the command's own backend exits with it (and so is gone from /proc after)."""
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir)}
    synset = Path(sys.executable).parent / "synset"
    before, start = postgres_cpu(), time.perf_counter()
    last = dict(before)
    proc = subprocess.Popen([str(synset), "consensus", "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        last.update(postgres_cpu())
        if pid:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - start
    db = sum(cpu - before.get(p, 0.0) for p, cpu in last.items())
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    cpu = usage.ru_utime + usage.ru_stime
    out = (f"{wall:6.1f} s wall, {cpu:6.1f} CPU-s, {usage.ru_maxrss / 1024:6.0f} MB peak RSS, "
           f"database {db:5.1f} CPU-s (every PostgreSQL process on the machine)")  # fmt: skip
    return out if code == 0 else f"exit {code}: {err[-300:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    args = parser.parse_args()
    try:
        url = seeded_database(DB_NAME, args)
        with tempfile.TemporaryDirectory(prefix="bench-consensus-") as tmp:
            print(f"synset consensus, first run:  {run(url, Path(tmp))}", flush=True)
            print(f"synset consensus, second run: {run(url, Path(tmp))}", flush=True)
    finally:
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
