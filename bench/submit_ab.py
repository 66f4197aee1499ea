"""Annotator submits, two versions of the code side by side on one ILSVRC-scale database.

A change to the submit path is judged against the code before it on the same data
in the same hour: on a shared machine the load moves more between hours than
most changes do. This seeds (or with ``--reuse`` reuses) the ILSVRC shape of
bench/ilsvrc_seed.py, runs ``synset serve`` (one worker) from each checkout
against it, and alternates rounds: each round, one annotator per version
fetches and submits ``--per`` pages of 24 (order swapped every round, a fresh
annotator each time). Prints each round's median and, per version, the median,
p90 and worst ``POST /api/votes`` in ms.

    git worktree add --detach /tmp/before HEAD~1
    .venv/bin/python bench/submit_ab.py --before /tmp/before [--rounds 6] [--per 8] [--reuse]

The database must be at the newer checkout's schema: the older code has to run on
it (true when the newer one only added columns, indexes or triggers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.curator_scale import answering, free_port, login  # noqa: E402
from bench.ilsvrc_seed import add_shape_arguments, drop_database, seeded_database  # noqa: E402

DB_NAME = "synset_bench_submit_ab"
SERVE = ("import sys; from synset_builder.cli import app; "
         "sys.argv = ['synset', 'serve', '--host', '127.0.0.1', '--port', sys.argv[1], "
         "'--workers', '1']; app()")  # fmt: skip


def serve(url: str, data_dir: Path, checkout: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``synset serve`` with ``checkout``'s code (first on the path)."""
    port = free_port()
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir),
           "SYNSET_WEB_GOLD_FRACTION": "0", "PYTHONPATH": str(checkout)}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], env=env, cwd=checkout,
                              stdout=subprocess.DEVNULL)  # fmt: skip
    return server, answering(server, f"http://127.0.0.1:{port}", f"the server of {checkout}")


def submits(base: str, who: str, pages: int) -> list[float]:
    """Milliseconds of each ``POST /api/votes`` of ``who``'s ``pages`` pages."""
    client = login(base, who)
    took = []
    for _ in range(pages):
        items = client.get("/api/tasks/next?n=24", timeout=120).json()["items"]
        votes = [{"candidate_id": i["candidate_id"], "label": i["candidate_id"] % 3 != 0}
                 for i in items]  # fmt: skip
        t = time.perf_counter()
        r = client.post("/api/votes", json={"votes": votes, "elapsed_ms": 20000}, timeout=120)
        took.append((time.perf_counter() - t) * 1000)
        if r.status_code >= 300:
            raise SystemExit(f"submit refused ({r.status_code}): {r.text[:200]}")
    client.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    parser.add_argument("--before", type=Path, required=True, help="checkout of the older code")
    parser.add_argument("--after", type=Path, default=ROOT, help="checkout of the newer code")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per", type=int, default=8, help="pages per annotator and round")
    parser.add_argument("--hard-share", type=float, default=None,
                        help="set every synset's hard share to this (what a refit writes; "
                             "code that has the column then mixes per vote)")  # fmt: skip
    args = parser.parse_args()
    try:
        url = seeded_database(DB_NAME, args)
        if args.hard_share is not None:
            from sqlalchemy import create_engine, text

            engine = create_engine(url)
            with engine.begin() as conn:
                conn.execute(text("UPDATE synset SET hard_share = :h"), {"h": args.hard_share})
            engine.dispose()
        with tempfile.TemporaryDirectory(prefix="bench-submit-") as tmp:
            versions = {"before": args.before, "after": args.after}
            servers = {name: serve(url, Path(tmp) / name, path) for name, path in versions.items()}
            took: dict[str, list[float]] = {name: [] for name in versions}
            try:
                for r in range(args.rounds):
                    order = list(versions) if r % 2 == 0 else list(reversed(versions))
                    for k, name in enumerate(order):
                        who = f"bench-w{2 * r + k + 1}"
                        ms = submits(servers[name][1], who, args.per)
                        took[name] += ms
                        median = statistics.median(ms)
                        print(f"round {r} {name:<6} ({who}): median {median:6.1f} ms",
                              flush=True)  # fmt: skip
            finally:
                for server, _ in servers.values():
                    server.terminate()
                    server.wait()
        for name, ms in took.items():
            p90 = sorted(ms)[int(0.9 * len(ms))]
            print(f"{name:<6} {len(ms)} submits: median {statistics.median(ms):.1f} ms, "
                  f"p90 {p90:.1f} ms, worst {max(ms):.1f} ms")  # fmt: skip
    finally:
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
