"""``synset consensus`` (a full recompute) at ILSVRC scale: time, CPU and peak memory.

Seeds the same shape as ``bench/curator_scale.py`` (``bench/ilsvrc_seed.py``) (1,000 synsets x
1,000 candidates, three votes on 80% of them from 300 annotators, synsets
interleaved as a crowd would vote), then runs ``synset consensus --json`` in a
child process twice: the first run rewrites the seeded decisions, the second
finds nothing changed (what a periodic recompute mostly meets). Prints per run
the wall time, the command's CPU time, its peak RSS (``wait4``) and the database
server's CPU time over the run (``pg_stat_activity`` cannot say; the backends'
``/proc`` counters can, on one machine, sampled while the command runs): the
backends connected to the benchmark's database, and every PostgreSQL process
(an upper bound on a machine where others use the same server).

``--tree DIR`` (repeatable) runs the command of another checkout as well (an
archive of the code before a change: ``git archive REV | tar -x -C DIR``), the
trees one after the other in the same run; before each tree's first run the
seed's decisions are put back (``ilsvrc_seed.reset_decisions``), so every first
run rewrites every decision. ``--workers N`` is passed to the command of this
tree only.

``--sizes 250,1000`` runs the same at several numbers of synsets, each of the same
shape (``--per-synset`` candidates, the same largest synset), each in a database
of its own (``synset_bench_consensus_<N>``), and ends with a table of the peak
RSS per size and tree: bounded memory means the peak does not grow with the
number of synsets. The peak RSS is the command's ``VmHWM`` (``wait4``'s
``ru_maxrss``: anonymous and file-backed pages together); beside it, the largest
``RssAnon`` and ``RssFile`` sampled every 0.2 s while it runs (a sample can miss a
short peak; ``VmHWM`` cannot).

Targets (issue 26): <= 90 s and <= 1 GB, memory bounded whatever the size.

Usage::

    .venv/bin/python bench/consensus_scale.py [--synsets 1000] [--per-synset 1000]
        [--reuse] [--keep] [--tree DIR]... [--workers N] [--runs 1] [--sizes 250,1000]
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
    reset_decisions,
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


def descendants(root: int) -> dict[int, tuple[float, float]]:
    """Per process below ``root`` (not ``root`` itself): CPU seconds so far and peak RSS
    in MB. A fork server's workers are not reaped by the command, so ``wait4`` never
    counts them: they are sampled here instead."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, stat = {}, {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(proc.name)] = int(fields[1])
        stat[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick
    out = {}
    for pid in stat:
        up = parent.get(pid)
        while up and up != root:
            up = parent.get(up)
        if up == root:
            try:
                status = (Path("/proc") / str(pid) / "status").read_text()
                hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            except (OSError, StopIteration):
                continue
            out[pid] = (stat[pid], int(hwm.split()[1]) / 1024)
    return out


def our_backends(url: str) -> set[int]:
    """The server processes connected to the benchmark's database (``url``'s) right now."""
    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    out = subprocess.run(
        ["psql", url.replace("postgresql+psycopg", "postgresql"), "-Atc",
         f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}'"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return {int(p) for p in out.stdout.split()}


def rss_now(pid: int) -> tuple[float, float]:
    """The process's RssAnon and RssFile now, in MB (0 once it is gone)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    got = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status
           if line.startswith(("RssAnon", "RssFile"))}  # fmt: skip
    return got.get("RssAnon", 0.0), got.get("RssFile", 0.0)


def run(url: str, data_dir: Path, tree: Path, extra: list[str], peaks: list[float]) -> str:
    """One ``synset consensus`` of the checkout ``tree``; the database's CPU is sampled
    while it runs, since the command's own backends exit with it (and so are gone
    from /proc after)."""
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir),
           "PYTHONPATH": str(tree)}  # fmt: skip
    load = os.getloadavg()[0]
    before, start = postgres_cpu(), time.perf_counter()
    last, ours, below = dict(before), set(), {}
    anon = file = 0.0
    command = [sys.executable, "-m", "synset_builder.cli", "consensus", "--json", *extra]
    proc = subprocess.Popen(command, env=env, cwd=tree,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        last.update(postgres_cpu())
        ours |= our_backends(url)
        below.update(descendants(proc.pid))
        if not pid:
            now_anon, now_file = rss_now(proc.pid)
            anon, file = max(anon, now_anon), max(file, now_file)
        if pid:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - start
    db = sum(cpu - before.get(p, 0.0) for p, cpu in last.items())
    mine = sum(cpu - before.get(p, 0.0) for p, cpu in last.items() if p in ours)
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    cpu = usage.ru_utime + usage.ru_stime
    workers = sum(c for c, _ in below.values())
    rss = [usage.ru_maxrss / 1024, *(m for _, m in below.values())]
    peaks.append(rss[0])
    out = (f"{wall:6.1f} s wall, {cpu + workers:6.1f} CPU-s (command {cpu:.1f} + "
           f"{len(below)} processes below it {workers:.1f}), peak RSS {rss[0]:.0f} MB "
           f"(command, VmHWM; sampled RssAnon {anon:.0f} + RssFile {file:.0f}; its processes "
           f"{'/'.join(f'{m:.0f}' for m in rss[1:]) or '-'} MB), database "
           f"{mine:5.1f} CPU-s (its backends) / {db:5.1f} (every PostgreSQL process), "
           f"load {load:.1f} -> {os.getloadavg()[0]:.1f}")  # fmt: skip
    return out if code == 0 else f"exit {code}: {err[-300:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        default=[],
        help="another checkout to run the same way (repeatable)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        choices=(1, 2),
        default=2,
        help="1: only the first run of each tree (rewrites every decision)",
    )
    parser.add_argument("--workers", type=int, default=None,
                        help="--workers of this tree's command")  # fmt: skip
    parser.add_argument("--sizes", default=None,
                        help="numbers of synsets to run at, comma-separated (overrides "
                             "--synsets): peak RSS per size")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")] if args.sizes else [args.synsets]
    table: dict[tuple[int, str], list[float]] = {}
    trees = [*(t.resolve() for t in args.tree), ROOT]
    for n in sizes:
        args.synsets = n
        name = DB_NAME if args.sizes is None else f"{DB_NAME}_{n}"
        try:
            url = seeded_database(name, args)
            with tempfile.TemporaryDirectory(prefix="bench-consensus-") as tmp:
                for tree in trees:
                    extra = [] if tree != ROOT or args.workers is None else [
                        "--workers", str(args.workers)]  # fmt: skip
                    if tree != trees[0] or args.reuse:
                        reset = reset_decisions(url, per_synset=args.per_synset)
                        print(f"seed's decisions put back in {reset:.0f} s", flush=True)
                    peaks = table.setdefault((n, tree.name), [])
                    for which in ("first run: ", "second run:")[: args.runs]:
                        got = run(url, Path(tmp), tree, extra, peaks)
                        print(f"{n} synsets, {tree.name} {which} {got}", flush=True)
        finally:
            if not args.keep:
                drop_database(name)
    if len(sizes) > 1:
        print("peak RSS (VmHWM, MB) per number of synsets, each run:")
        for tree in trees:
            cells = "  ".join(f"{n}: {'/'.join(f'{p:.0f}' for p in table[(n, tree.name)])}"
                              for n in sizes)  # fmt: skip
            print(f"  {tree.name}: {cells}")


if __name__ == "__main__":
    main()
