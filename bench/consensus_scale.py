"""``synset consensus`` (a full recompute) at ILSVRC scale: time, CPU and peak memory.

Seeds the same shape as ``bench/curator_scale.py`` (``bench/ilsvrc_seed.py``) (1,000 synsets x
1,000 candidates, three votes on 80% of them from 300 annotators, synsets
interleaved as a crowd would vote), then runs ``synset consensus --json`` in a
child process twice: the first run rewrites the seeded decisions, the second
finds nothing changed (what a periodic recompute mostly meets). Prints per run
the wall time, the command's CPU time, its peak RSS (``wait4``) and the database
server's CPU time over the run (``pg_stat_activity`` cannot say; the backends'
``/proc`` counters can, on one machine).

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
    create_database,
    database_url,
    drop_database,
    seed,
    seeded_shape,
)

DB_NAME = "synset_bench_consensus"


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine."""
    total = 0
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
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def run(url: str, data_dir: Path) -> str:
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir)}
    synset = Path(sys.executable).parent / "synset"
    db_before, start = postgres_cpu(), time.perf_counter()
    proc = subprocess.Popen([str(synset), "consensus", "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    db = postgres_cpu() - db_before
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    cpu = usage.ru_utime + usage.ru_stime
    out = (f"{wall:6.1f} s wall, {cpu:6.1f} CPU-s, {usage.ru_maxrss / 1024:6.0f} MB peak RSS, "
           f"database {db:5.1f} CPU-s")  # fmt: skip
    return out if code == 0 else f"exit {code}: {err[-300:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synsets", type=int, default=1000)
    parser.add_argument("--per-synset", type=int, default=1000)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--keep", action="store_true", help="leave the database for --reuse")
    args = parser.parse_args()
    url = database_url(DB_NAME)
    shape = (args.synsets, args.synsets * args.per_synset)
    try:
        if args.reuse and seeded_shape(url) == shape:
            print(f"reusing {DB_NAME}: {shape[0]} synsets, {shape[1]} candidates")
        else:
            create_database(DB_NAME)
            seconds = seed(url, synsets=args.synsets, per_synset=args.per_synset, verbose=False)
            print(f"seeded {shape[0]} synsets, {shape[1]} candidates in {seconds:.0f} s")
        with tempfile.TemporaryDirectory(prefix="bench-consensus-") as tmp:
            print(f"synset consensus, first run:  {run(url, Path(tmp))}", flush=True)
            print(f"synset consensus, second run: {run(url, Path(tmp))}", flush=True)
    finally:
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
