"""Load test of the annotator web app: N annotators fetching 24-item tasks and submitting.

Runs ``synset serve`` (uvicorn, one worker per core) on a fresh PostgreSQL database
on 127.0.0.1, seeded with S synsets x M candidates (40 x 10,000; ``--decided`` starts
with a share of them decided), then a bounded asyncio load generator (one aiohttp
client per simulated annotator, each with its own session cookie and keep-alive
connection) in this process. Each annotator loops:
``GET /api/tasks/next?n=24`` then ``POST /api/votes``, each answer right 85% of the
time about a hidden truth (60% yes): a crowd of clickers answering at random would
be excluded by consensus within minutes, as it should be. Two ways
to load the server:

* saturation (``--n N``): as fast as the server answers, no time spent looking at
  a page; latency is then N / throughput by Little's law, whatever the server;
* paced (``--paced RATE``): 200 annotators who each submit a page every
  200 * 24 / RATE seconds (fetch when due, submit 90% of a period later), i.e. an
  offered load of RATE votes/s; the issue's target is RATE = 2,000 with p99 < 250 ms.

Reported: votes/s over the steady state, p50/p95/p99 latency of fetch and submit,
errors, and the CPU milliseconds one page (fetch + submit) costs the server
processes, the PostgreSQL backends and the load generator, read from /proc.

    .venv/bin/python bench/web_load.py            # N = 50, 200, and paced at 2,000 votes/s
    .venv/bin/python bench/web_load.py --quick    # N = 10, 5 s
    .venv/bin/python bench/web_load.py --paced 1000 --paced 1400
    .venv/bin/python bench/web_load.py --paced 2000 --decided 0.9   # a project far along

The load generator shares the machine's cores with the server, so the figures are
a lower bound for a server with the machine to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import aiohttp
import httpx
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synset_builder.accounts import hash_password  # noqa: E402
from synset_builder.db import migrate  # noqa: E402
from synset_builder.db.models import (  # noqa: E402
    Annotator,
    Candidate,
    Consensus,
    Image,
    Synset,
    Vote,
)

PG_ADMIN = os.environ.get(
    "SYNSET_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-password"
TARGET = 2000.0  # votes/s at N = 200 (issue: p99 < 250 ms, no errors)
PHOTO = next((ROOT / ".." / "shared" / "testdata" / "photos").resolve().glob("*.JPEG"))


@dataclass
class Stats:
    fetch_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    accepted: int = 0
    # Steady state: paced annotators start at random points of their first period.
    window: tuple[float, float] = (0.0, 0.0)
    # (monotonic time the submit came back, votes it recorded)
    submitted: list[tuple[float, int]] = field(default_factory=list)
    errors: int = 0
    empty: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors += 1
        self.statuses[what] = self.statuses.get(what, 0) + 1


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed(url: str, synsets: int, per_synset: int, annotators: int, decided: float) -> None:
    """Synsets of candidates, annotators, and a share ``decided`` of the candidates
    with a consensus decision already (a project some way into voting)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(Synset),
            [
                {"wnid": f"n{90000000 + k}", "name": f"class {k}", "lemmas": [f"class{k}"],
                 "gloss": "a benchmark class", "origin": "custom", "target": True, "goal": 10**6,
                 "imageable": True}
                for k in range(synsets)
            ],
        )  # fmt: skip
        sids = list(conn.scalars(select(Synset.id)))
        conn.execute(
            insert(Image),
            [
                {"sha256": uuid.uuid4().hex * 2, "path": str(PHOTO), "width": 500, "height": 375,
                 "format": "JPEG", "bytes": 1000}
                for _ in range(synsets * per_synset)
            ],
        )  # fmt: skip
        images = list(conn.scalars(select(Image.id).order_by(Image.id)))
        conn.execute(
            insert(Candidate),
            [
                {"image_id": image_id, "synset_id": sids[k % synsets], "source": "bench", "rank": k}
                for k, image_id in enumerate(images)
            ],
        )
        rng = random.Random(0)
        done = rng.sample(list(conn.scalars(select(Candidate.id))), int(decided * len(images)))
        if done:
            conn.execute(
                insert(Consensus),
                [
                    {"candidate_id": cid, "p_yes": 0.9 if yes else 0.1, "method": "dynamic",
                     "decision": "accepted" if yes else "rejected", "n_votes": 3}
                    for cid, yes in ((cid, rng.random() < 0.5) for cid in sorted(done))
                ],
            )  # fmt: skip
        pw = hash_password(PASSWORD)
        conn.execute(
            insert(Annotator),
            [
                {"username": f"a{k}", "password_hash": pw, "role": "annotator", "disabled": False,
                 "pages_done": 0}
                for k in range(annotators)
            ],
        )  # fmt: skip
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What autovacuum does within a minute of a bulk load: without statistics the
        # planner cannot know that walking the serve-key index beats sorting a synset,
        # and without the visibility map a count reads the heap instead of the index.
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def answer(candidate_id: int) -> bool:
    """A careful annotator's answer: the hidden truth, 85% of the time."""
    truth = (candidate_id * 2654435761) % 100 < 60
    return truth if random.random() < 0.85 else not truth


async def login(client: aiohttp.ClientSession, name: str, stats: Stats) -> bool:
    async with client.post("/api/session", json={"username": name, "password": PASSWORD}) as r:
        await r.read()
        if r.status != 200:
            stats.error(f"login {r.status}")
        return r.status == 200


async def annotate(
    client: aiohttp.ClientSession, deadline: float, stats: Stats, period: float | None
) -> None:
    """One simulated annotator: fetch a 24-item task, label it, submit, repeat.

    ``period`` None: as fast as the server answers (saturation). Otherwise one page
    every ``period`` seconds: fetch when the page is due, look at it until 90% of
    the period has passed, submit. A slow server makes the schedule slip, so the
    offered rate falls and shows up as a shortfall in votes/s, not hidden.
    """
    due = time.monotonic() + (random.uniform(0, period) if period else 0.0)
    while True:
        if period:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        if time.monotonic() >= deadline:
            return
        try:
            await one_page(client, stats, None if period is None else due + 0.9 * period)
        except (aiohttp.ClientError, TimeoutError) as exc:
            stats.error(type(exc).__name__)
        if period:
            due = max(due + period, time.monotonic())


async def one_page(client: aiohttp.ClientSession, stats: Stats, submit_at: float | None) -> None:
    t0 = time.perf_counter()
    async with client.get("/api/tasks/next", params={"n": 24}) as r:
        body = await r.json() if r.status == 200 else None
    stats.fetch_ms.append((time.perf_counter() - t0) * 1000)
    if body is None:
        stats.error(f"fetch {r.status}")
        return
    items = body["items"]
    if not items:
        stats.empty += 1
        await asyncio.sleep(0.2)
        return
    votes = [{"candidate_id": i["candidate_id"], "label": answer(i["candidate_id"])} for i in items]
    if submit_at is not None:
        await asyncio.sleep(max(0.0, submit_at - time.monotonic()))
    t0 = time.perf_counter()
    async with client.post("/api/votes", json={"votes": votes}) as r:
        body = await r.json() if r.status == 200 else None
    stats.submit_ms.append((time.perf_counter() - t0) * 1000)
    if body is None:
        stats.error(f"submit {r.status}")
        return
    accepted = body["accepted"]
    stats.accepted += accepted
    stats.submitted.append((time.monotonic(), accepted))


Client = aiohttp.ClientSession


def _client(
    base: str, cookies: aiohttp.abc.AbstractCookieJar | None = None
) -> aiohttp.ClientSession:
    """One annotator's browser: its cookie jar and one keep-alive connection.

    aiohttp rather than httpx: the load generator shares the server's two cores,
    and httpx cost about twice the CPU per request.
    """
    return aiohttp.ClientSession(
        base_url=base,
        connector=aiohttp.TCPConnector(limit=1),
        # Cookies for 127.0.0.1: aiohttp ignores cookies from IP addresses unless unsafe.
        cookie_jar=cookies or aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def run_load(
    base: str,
    n: int,
    seconds: float,
    period: float | None,
    snap: Callable[[], dict[str, float]],
    warmup: tuple[float, Callable[[], None]] = (0.0, lambda: None),
) -> tuple[Stats, float, dict[str, float]]:
    """Log everyone in first (argon2 is slow on purpose), warm up, then start the clock.

    ``warmup``: seconds of the same load, not measured, then a callable run before the
    clock starts (the database's ANALYZE).
    """
    stats = Stats()
    clients = [_client(base) for _ in range(n)]
    try:
        sem = asyncio.Semaphore(8)

        async def guarded_login(k: int) -> bool:
            async with sem:
                return await login(clients[k], f"a{k}", stats)

        ok = await asyncio.gather(*(guarded_login(k) for k in range(n)))
        # Logging 200 people in takes longer than the server keeps an idle connection
        # open: start each annotator on a fresh connection, as a browser would reconnect.
        for k, old in enumerate(clients):
            clients[k] = _client(base, old.cookie_jar)
            await old.close()
        active = [c for c, good in zip(clients, ok, strict=True) if good]
        if warmup[0] > 0:
            t0 = time.monotonic()
            await asyncio.gather(*(annotate(c, t0 + warmup[0], Stats(), period) for c in active))
        await asyncio.to_thread(warmup[1])
        cpu0, t0 = snap(), time.monotonic()
        await asyncio.gather(*(annotate(c, t0 + seconds, stats, period) for c in active))
        end, cpu1 = time.monotonic(), snap()
        stats.window = (t0 + (period or 0.0), end)
        return stats, end - t0, {key: cpu1[key] - cpu0[key] for key in cpu0}
    finally:
        await asyncio.gather(*(c.close() for c in clients))


def analyze(engine: Engine) -> None:
    """What autovacuum does once the warm-up has filled the vote, lease and consensus
    tables: without it the planner still sees them as empty, as at seeding time."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def vote_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Vote)).scalar_one()


def cpu_seconds(server_pid: int, database: str) -> dict[str, float]:
    """CPU time so far of the server's processes, the database's backends and this one.

    Read from /proc, so the per-page figures stay meaningful on a machine shared with
    other work, where wall-clock rates do not.
    """
    tick = os.sysconf("SC_CLK_TCK")
    out = {"server": 0.0, "postgres": 0.0, "loadgen": time.process_time()}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick
        if cmd.startswith("postgres") and f" {database} " in cmd:
            out["postgres"] += used
        elif (
            int(fields[2]) == server_pid
            or int(pid) == server_pid
            or os.getpgid(int(pid)) == server_pid
        ):
            out["server"] += used
    return out


def decided_share(engine: Engine) -> float:
    """How far voting has got: the walk to open items grows with it (without an index
    of open items)."""
    with engine.connect() as conn:
        done = conn.scalar(
            select(func.count()).select_from(Consensus).where(Consensus.decision != "pending")
        )
        return done / max(1, conn.scalar(select(func.count()).select_from(Candidate)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 10 for 5 s on a small database")
    parser.add_argument("--n", type=int, action="append", help="concurrent annotators (repeatable)")
    parser.add_argument(
        "--paced",
        type=float,
        action="append",
        help="also run N=200 annotators offering this many votes/s in all (repeatable)",
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--warmup",
        type=float,
        default=15.0,
        help="seconds of unmeasured load before each level, then ANALYZE (default 15)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--synsets", type=int, default=40, help="target synsets to seed (default 40)"
    )
    parser.add_argument(
        "--candidates", type=int, default=10000, help="candidates per synset (default 10,000)"
    )
    parser.add_argument(
        "--decided",
        type=float,
        default=0.0,
        help="share of the candidates decided before the load starts, 0-0.99 (default 0)",
    )
    parser.add_argument(
        "--hard-share",
        type=float,
        default=None,
        help="give every synset this share of hard items and a prior (what a refit writes;"
        " the web app's posterior then mixes per vote), 0-0.9 (default: 0, as before a refit)",
    )
    args = parser.parse_args()
    # (annotators, offered votes/s or None for as fast as the server answers)
    levels: list[tuple[int, float | None]] = [(n, None) for n in args.n or []]
    levels += [(200, rate) for rate in args.paced or []]
    if not levels:
        levels = [(10, None)] if args.quick else [(50, None), (200, None), (200, TARGET)]
    seconds = 5.0 if args.quick else args.seconds
    if any(rate and 200 * 24 / rate >= seconds / 2 for _, rate in levels):
        parser.error("--seconds must be at least twice a paced annotator's page period")
    if not 0 <= args.decided <= 0.99:
        parser.error("--decided must lie in [0, 0.99]")
    if args.hard_share is not None and not 0 <= args.hard_share <= 0.9:
        parser.error("--hard-share must lie in [0, 0.9]")
    synsets, per_synset = (4, 5000) if args.quick else (args.synsets, args.candidates)

    name = f"synset_bench_web_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    data_dir = Path(tempfile.mkdtemp(prefix="synset-bench-web-"))
    server = None
    try:
        migrate.upgrade(url)
        t0 = time.perf_counter()
        seed(url, synsets, per_synset, max(n for n, _ in levels), args.decided)
        if args.hard_share is not None:
            with create_engine(url).begin() as conn:
                conn.execute(text("UPDATE synset SET hard_share = :h, prior_yes = 0.6"),
                             {"h": args.hard_share})  # fmt: skip
        print(
            f"seeded {synsets} synsets x {per_synset} candidates "
            f"({args.decided:.0%} decided) in {time.perf_counter() - t0:.1f} s"
        )
        port = free_port()
        env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(data_dir),
               "SYNSET_WEB_GOLD_FRACTION": "0"}  # fmt: skip
        synset_cli = Path(sys.executable).parent / "synset"
        server = subprocess.Popen(
            [str(synset_cli), "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):  # startup imports take a while on a busy 2-core machine
            if server.poll() is not None:
                raise SystemExit(f"the server exited with {server.returncode}")
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        print(
            f"server: uvicorn, {args.workers} workers; PostgreSQL on 127.0.0.1; "
            f"cores: {os.cpu_count()}"
        )
        print(
            f"{'N':>5} {'offered':>8} {'votes/s':>9} {'fetch p50/p95/p99 ms':>24} "
            f"{'submit p50/p95/p99 ms':>24} {'errors':>7}"
        )
        engine = create_engine(url)
        for n, offered in levels:
            # A page of 24 votes from each of n annotators every `period` seconds.
            period = n * 24 / offered if offered else None
            votes_before: list[int] = []

            def warmed_up(engine: Engine = engine, into: list[int] = votes_before) -> None:
                analyze(engine)
                into.append(vote_count(engine))

            snap = partial(cpu_seconds, server.pid, name)
            warm = (2.0 if args.quick else args.warmup, warmed_up)
            stats, elapsed, cpu = asyncio.run(run_load(base, n, seconds, period, snap, warm))
            before, after = votes_before[0], vote_count(engine)
            if after - before != stats.accepted:
                print(f"      the database holds {after - before} new votes, the answers said "
                      f"{stats.accepted}")  # fmt: skip
            start, end = stats.window
            rate = sum(n for t, n in stats.submitted if t >= start) / (end - start)
            f = "/".join(f"{pct(stats.fetch_ms, q):.0f}" for q in (0.5, 0.95, 0.99))
            s = "/".join(f"{pct(stats.submit_ms, q):.0f}" for q in (0.5, 0.95, 0.99))
            load = f"{offered:.0f}" if offered else "max"
            print(f"{n:>5} {load:>8} {rate:>9.0f} {f:>24} {s:>24} {stats.errors:>7}", flush=True)
            pages = max(1, len(stats.submit_ms))
            per_page = " / ".join(f"{key} {1000 * used / pages:.1f}" for key, used in cpu.items())
            print(f"      CPU ms per page (fetch + submit): {per_page}")
            if stats.statuses:
                print(f"      errors: {stats.statuses}")
            if stats.empty:
                print(f"      ({stats.empty} empty task answers: the pool ran dry for some)")
            print(f"      target {TARGET:.0f} votes/s: ratio {rate / TARGET:.2f}; mean fetch "
                  f"{statistics.fmean(stats.fetch_ms or [0]):.0f} ms; "
                  f"{decided_share(engine):.0%} of the candidates decided")  # fmt: skip
        engine.dispose()
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGINT)  # the supervisor and its workers
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
