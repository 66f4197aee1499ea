"""The curator's side at ILSVRC scale: every curator page and command, timed.

Seeds ILSVRC's shape on PostgreSQL (bench/ilsvrc_seed.py: 1,000 synsets x 1,000
candidates, three votes on 80% of them, decisions on those; in SQL, through the
real schema). ``--takedowns K`` adds K active takedowns of each kind and K open
reports, to time the non-empty case. Then, each with a timeout (``--timeout``; a
request that runs out has its database backend cancelled, so the next figure is
not measured on a busy server):

* ``synset status --json`` and ``synset hierarchy show``, each in a child process
  (start-up included), with their peak RSS (``wait4``);
* ``GET /dashboard`` (plain, sorted and filtered, a later page) and
  ``GET /api/synsets`` as a curator, against ``synset serve`` (one worker) in a
  child process;
* for reference, an annotator's ``GET /api/tasks/next?n=24`` and ``POST /api/votes``
  (``--pages`` rounds, median and worst);

and prints the server's peak RSS.

Usage::

    .venv/bin/python bench/curator_scale.py [--synsets 1000] [--per-synset 1000]
        [--takedowns 0] [--timeout 120] [--pages 20] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ilsvrc_seed import (  # noqa: E402
    ADMIN_URL,
    PASSWORD,
    add_shape_arguments,
    add_takedowns,
    drop_database,
    seeded_database,
)

DB_NAME = "synset_bench_curator"
TARGETS = {"/dashboard": 1.0, "/api/synsets": 1.0, "status": 3.0, "hierarchy": 3.0}


def cancel_queries(db: str) -> None:
    """Stop what the server's backends still run after a request gave up on them."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = :d "
                "AND state = 'active' AND pid <> pg_backend_pid()"
            ),
            {"d": db},
        )
    admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_command(args: list[str], env: dict[str, str], timeout: float) -> tuple[str, int]:
    """Seconds (or why not) and peak RSS in MB of one ``synset`` command."""
    synset = Path(sys.executable).parent / "synset"
    start = time.perf_counter()
    proc = subprocess.Popen([str(synset), *args], env=env, stdout=subprocess.DEVNULL)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            seconds = time.perf_counter() - start
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code
            took = f"{seconds:.2f} s" if code == 0 else f"exit {code} after {seconds:.1f} s"
            return took, usage.ru_maxrss // 1024
        if time.perf_counter() > deadline:
            proc.kill()
            _, _, usage = os.wait4(proc.pid, 0)
            return f"timeout ({timeout:.0f} s)", usage.ru_maxrss // 1024
        time.sleep(0.02)


def timed_get(client: httpx.Client, path: str, timeout: float, db: str) -> str:
    start = time.perf_counter()
    try:
        r = client.get(path, timeout=timeout)
    except httpx.TimeoutException:
        cancel_queries(db)
        return f"timeout ({timeout:.0f} s)"
    seconds = time.perf_counter() - start
    return f"{seconds:.2f} s" if r.status_code == 200 else f"HTTP {r.status_code} ({seconds:.1f} s)"


def login(base: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=base)
    r = client.post("/api/session", json={"username": name, "password": PASSWORD}, timeout=30)
    r.raise_for_status()
    return client


def annotator_pages(base: str, pages: int, timeout: float) -> tuple[list[float], list[float]]:
    """Milliseconds of each fetch and each submit of one annotator's ``pages`` pages."""
    client = login(base, "bench-w1")
    fetch, submit = [], []
    for _ in range(pages):
        t = time.perf_counter()
        items = client.get("/api/tasks/next?n=24", timeout=timeout).json()["items"]
        fetch.append((time.perf_counter() - t) * 1000)
        votes = [{"candidate_id": i["candidate_id"], "label": i["candidate_id"] % 3 != 0}
                 for i in items]  # fmt: skip
        t = time.perf_counter()
        client.post("/api/votes", json={"votes": votes, "elapsed_ms": 20000}, timeout=timeout)
        submit.append((time.perf_counter() - t) * 1000)
    client.close()
    return fetch, submit


def peak_rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def serve(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir),
           "SYNSET_WEB_GOLD_FRACTION": "0"}  # fmt: skip
    synset = Path(sys.executable).parent / "synset"
    server = subprocess.Popen(
        [str(synset), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return server, answering(server, f"http://127.0.0.1:{port}", "the server")


def answering(server: subprocess.Popen[bytes], base: str, what: str) -> str:
    """``base`` once ``/login`` answers; exits with one line if ``server`` dies or
    stays silent for 5 minutes (bench/submit_ab.py starts its servers through it too)."""
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(f"{what} exited with {server.returncode}")
        try:
            httpx.get(f"{base}/login", timeout=2)
            return base
        except httpx.TransportError:
            time.sleep(0.5)
    raise SystemExit(f"{what} did not answer within 5 minutes")


def report(what: str, took: str, target: float | None, extra: str = "") -> None:
    goal = f"<= {target:g} s" if target else ""
    print(f"  {what:<40} {took:>22}  {goal:<8} {extra}", flush=True)


def measure(url: str, db: str, data_dir: Path, timeout: float, pages: int) -> None:
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir)}
    print(f"{'what':<42} {'time':>22}  {'target':<8} peak RSS")
    for args, key in ((["status", "--json"], "status"), (["hierarchy", "show"], "hierarchy")):
        took, rss = run_command(args, env, timeout)
        report("synset " + " ".join(args), took, TARGETS[key], f"{rss} MB")
    server, base = serve(url, data_dir)
    try:
        curator = login(base, "bench-curator")
        for path, key in (
            ("/dashboard", "/dashboard"),
            ("/dashboard", "/dashboard"),
            ("/dashboard?sort=pending&q=class+1", "/dashboard"),
            ("/dashboard?sort=agreement&page=7", "/dashboard"),
            ("/api/synsets", "/api/synsets"),
            ("/api/synsets", "/api/synsets"),
        ):
            report(f"GET {path}", timed_get(curator, path, timeout, db), TARGETS[key])
        curator.close()
        fetch, submit = annotator_pages(base, pages, timeout)
        for name, ms in (("fetch (GET /api/tasks/next?n=24)", fetch),
                         ("submit (POST /api/votes, 24)", submit)):  # fmt: skip
            took = f"{statistics.median(ms):.0f} / {max(ms):.0f} ms"
            report(f"annotator {name}", took, None, f"median / worst of {len(ms)}")
        print(f"  server peak RSS: {peak_rss_mb(server.pid)} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(parser)
    parser.add_argument("--takedowns", type=int, default=0, help="K takedowns of each kind")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per call")
    parser.add_argument("--pages", type=int, default=20, help="annotator pages to time")
    args = parser.parse_args()
    try:
        url = seeded_database(DB_NAME, args)
        if args.takedowns:
            add_takedowns(url, args.takedowns)
            print(f"added {args.takedowns} takedowns of each kind and {args.takedowns} reports")
        with tempfile.TemporaryDirectory(prefix="bench-curator-") as tmp:
            measure(url, DB_NAME, Path(tmp), args.timeout, args.pages)
    finally:
        if not args.keep:
            drop_database(DB_NAME)


if __name__ == "__main__":
    main()
