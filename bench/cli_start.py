"""Start-up of the ``synset`` command line against ``python -c "import typer"``.

Issue 25's targets, each the median of N runs, as a ratio to the median of
``python -c "import typer"`` measured in the same run (the floor any typer CLI
pays, so the ratio carries across machines):

* ``synset --version`` and ``synset --help``: at most 3x;
* ``synset status --json`` on an empty (migrated, no rows) SQLite database: at most 5x;
* the peak RSS of ``synset --version``: at most 60 MB.

One more row, without a target, shows what a command that opens the database
through the ORM must import whatever the CLI does: the ORM models and the
settings (``import synset_builder.db.models, synset_builder.config``, i.e.
SQLAlchemy and pydantic-settings). ``status`` on a plain SQLite file no longer
pays it (synset_builder/status_sqlite.py).

The commands run round robin, so a burst of load from elsewhere slows all of
them alike rather than one. Each is a fresh interpreter, as a user's shell starts
one. Wall time is what a user waits; CPU time (user + system, from ``os.wait4``'s
rusage of that very child, like the peak RSS) is the steadier figure on a shared
machine, since waiting for a core is not counted.

Run: ``.venv/bin/python bench/cli_start.py [--runs 10] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

TARGETS = {"--version": 3.0, "--help": 3.0, "status --json": 5.0, "db floor": None}
RSS_TARGET_MB = 60.0


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one child, which must succeed."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    assert child.stderr is not None
    err = child.stderr.read().decode()
    child.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}): {err}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # KiB on Linux


def measure(runs: int) -> dict[str, object]:
    load_before = os.getloadavg()[0]
    synset = str(Path(sys.executable).parent / "synset")
    with tempfile.TemporaryDirectory(prefix="cli-start-") as tmp:
        env = {
            **os.environ,
            "SYNSET_DATABASE_URL": f"sqlite:///{tmp}/empty.db",
            "SYNSET_DATA_DIR": f"{tmp}/data",
        }
        subprocess.run([synset, "init"], env=env, check=True, capture_output=True, cwd=tmp)
        commands = {
            "import typer": [sys.executable, "-c", "import typer"],
            "--version": [synset, "--version"],
            "--help": [synset, "--help"],
            "status --json": [synset, "status", "--json"],
            "db floor": [
                sys.executable,
                "-c",
                "import synset_builder.db.models, synset_builder.config",
            ],
        }
        for argv in commands.values():  # warm the page cache and the .pyc files
            _run(argv, env)
        wall: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        rss: list[float] = []
        for _ in range(runs):
            for name, argv in commands.items():
                seconds, cpu_seconds, peak = _run(argv, env)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
                if name == "--version":
                    rss.append(peak)
    base_wall = statistics.median(wall["import typer"])
    base_cpu = statistics.median(cpu["import typer"])
    rows = {}
    for name, target in TARGETS.items():
        ratio = statistics.median(wall[name]) / base_wall
        rows[name] = {
            "wall_s": round(statistics.median(wall[name]), 4),
            "ratio": round(ratio, 2),
            "cpu_s": round(statistics.median(cpu[name]), 4),
            "cpu_ratio": round(statistics.median(cpu[name]) / base_cpu, 2),
            "target": target,
            "ok": None if target is None else ratio <= target,
        }
    peak = max(rss)
    return {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "runs": runs,
        "import_typer": {"wall_s": round(base_wall, 4), "cpu_s": round(base_cpu, 4)},
        "commands": rows,
        "version_max_rss_mb": round(peak, 1),
        "version_rss_ok": peak <= RSS_TARGET_MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    before, after = result["load_1min"]  # type: ignore[misc]
    base = result["import_typer"]
    print(
        f"{result['date']}, {result['machine']}; load {before} -> {after}; medians of {args.runs}"
    )
    print(f"python -c 'import typer'  {base['wall_s']:.3f} s wall, {base['cpu_s']:.3f} s CPU")  # type: ignore[index]
    for name, row in result["commands"].items():  # type: ignore[union-attr]
        verdict = "" if row["target"] is None else (
            f"(target <= {row['target']:g}x) {'ok' if row['ok'] else 'OVER'}"
        )  # fmt: skip
        print(
            f"{name:14s} {row['wall_s']:.3f} s {row['ratio']:5.2f}x wall, "
            f"{row['cpu_s']:.3f} s {row['cpu_ratio']:5.2f}x CPU {verdict}"
        )
    mark = "ok" if result["version_rss_ok"] else "OVER"
    print(
        f"--version peak RSS {result['version_max_rss_mb']:.1f} MB "
        f"(target <= {RSS_TARGET_MB:g} MB) {mark}"
    )


if __name__ == "__main__":
    main()
