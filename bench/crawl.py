"""Crawl benchmark: this crawler and img2dataset side by side on the same URLs.

One threaded server on 127.0.0.1 (its own process, listen backlog 1024) serves
the real test photos under N distinct URLs, each with distinct bytes (a tag after
the JPEG's end), so both tools must write N files. Each tool runs in its own
process with the same total number of connections. img2dataset is set up as its
README recommends for keeping the downloaded files as they are:
``resize_mode="no"`` with ``skip_reencode=True`` (the bytes are kept, a cv2 decode
checks them), ``output_format="files"``, no EXIF extraction (ours stores none),
2 processes x C/2 threads and shards sized so each process gets two and none is
respawned. Its settings are printed with the result. Ours: 2 worker processes x
C/2 threads (``CrawlConfig.processes``; ``--processes 1`` runs the one-process
C-thread pool), per-host cap C in all, a Pillow decode of every file (JPEG at 1/8 scale, every scan
entropy-decoded), content addressing with rename and one syncfs per batch before
its commit, and every candidate with its provenance in a SQLite database.

Only the download call is timed. img2dataset starts its process pool inside
``download()`` and ours starts its workers inside ``crawl()``; the default 12,000
URLs amortise both, and a run over one URL per process measures img2dataset's and
is printed beside the result. CPU per image is user + sys of each tool's whole
process tree; peak RSS is sampled over it. ``--runs N`` repeats the pair, the
order alternating, so a load that rises during a run does not favour one tool.

    .venv/bin/python bench/crawl.py            # 12,000 URLs
    .venv/bin/python bench/crawl.py --quick    # 600 URLs (start-up weighs more: not a headline)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OURS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from synset_builder.config import Settings
    from synset_builder.crawl.plan import CrawlConfig
    from synset_builder.crawl.run import crawl
    from synset_builder.db import migrate
    from synset_builder.db.models import Candidate, Synset
    from synset_builder.db.session import make_engine, session_scope
    from synset_builder.crawl.fetch import FetchConfig
    from synset_builder.crawl.sources import make_source
    from sqlalchemy import func, select

    work, urls, conc = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    wnids, processes = json.loads(sys.argv[4]), int(sys.argv[5])
    db = f"sqlite:///{work / 'synset.db'}"
    migrate.upgrade(db)
    settings = Settings(database_url=db, data_dir=work / "data", allow_private_networks=True)
    engine = make_engine(db)
    with session_scope(engine) as s:
        for w in wnids:
            s.add(Synset(wnid=w, name=w, lemmas=[w], target=True))
    fetch = FetchConfig(user_agent="synset-bench", per_host=conc, allow_private=True, retries=0)
    cfg = CrawlConfig(
        fetch=fetch, per_synset=10**6, concurrency=conc, progress=False, processes=processes
    )
    import resource
    def used():
        return sum(
            resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
    with session_scope(engine) as s:
        t0, c0 = time.perf_counter(), used()
        crawl(s, settings.data_dir, [make_source(f"urls:{urls}", settings)], cfg)
        took, timed_cpu = time.perf_counter() - t0, used() - c0
        n = s.scalar(select(func.count()).select_from(Candidate))
    print(json.dumps({"seconds": took, "ok": n, "cpu": used(), "timed_cpu": timed_cpu}))
    """
)

THEIRS = textwrap.dedent(
    """
    import json, sys, time, glob
    from img2dataset import download

    work, urls, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    t0 = time.perf_counter()
    download(url_list=urls, output_folder=work + "/out", **settings)
    took = time.perf_counter() - t0
    import resource
    cpu = sum(
        resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    print(json.dumps({"seconds": took, "ok": len(glob.glob(work + "/out/*/*.jpg")), "cpu": cpu}))
    """
)


def _serve(conn) -> None:  # noqa: ANN001 - a multiprocessing Connection
    from tests.photo_server import PhotoServer

    with PhotoServer() as server:
        conn.send((server.port, server.names))
        conn.recv()


def _peak_rss(proc: subprocess.Popen, peaks: dict[str, int], stop: threading.Event) -> None:
    root = psutil.Process(proc.pid)
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            rss = [p.memory_info().rss for p in procs]
        except psutil.Error:
            rss = []
        if rss:
            peaks["max_process"] = max(peaks.get("max_process", 0), max(rss))
            peaks["tree"] = max(peaks.get("tree", 0), sum(rss))
        time.sleep(0.05)


def run_tool(code: str, args: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=args[0],
    )
    peaks: dict[str, int] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_peak_rss, args=(proc, peaks, stop), daemon=True)
    watcher.start()
    out, err = proc.communicate()
    stop.set()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark tool failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {
        **result,
        "rss_mb": peaks.get("max_process", 0) / 2**20,
        "tree_rss_mb": peaks.get("tree", 0) / 2**20,
    }


OURS_MORE = (
    "ours does more per image: a Pillow decode of every scan (JPEG at 1/8 scale; theirs: a "
    "full cv2 decode), content addressing with rename and a syncfs per batch before its "
    "commit (theirs: no sync), a candidate row with its provenance in SQLite"
)


def peer_settings(n: int, concurrency: int, processes: int = 2) -> dict[str, object]:
    """img2dataset's ``download()`` arguments for keeping files as downloaded, as printed."""
    return {
        "processes_count": processes,
        "thread_count": concurrency // processes,
        "output_format": "files",
        "input_format": "txt",
        "resize_mode": "no",
        "skip_reencode": True,
        "extract_exif": False,
        # Two shards per process: balanced, and under the pool's maxtasksperchild=5.
        "number_sample_per_shard": max(1, -(-n // (2 * processes))),
        "timeout": 10,
        "retries": 0,
        "enable_wandb": False,
        "distributor": "multiprocessing",
        "compute_hash": "sha256",
        "disallowed_header_directives": [],
    }


def _pair(
    tmp: Path, urls: list[str], names: list[str], args: argparse.Namespace, first: str
) -> dict[str, dict[str, float]]:
    """One run of each tool on the same URLs, ``first`` first; each in a fresh folder."""
    n = len(urls)
    wnids = [f"n{9000000 + k:08d}" for k in range((n + len(names) - 1) // len(names))]
    results = {}
    order = ("img2dataset", "synset-builder")
    for tool in order if first == order[0] else order[::-1]:
        work = Path(tempfile.mkdtemp(prefix=tool + "-", dir=tmp))
        if tool == "img2dataset":
            (work / "urls.txt").write_text("\n".join(urls) + "\n")
            settings = json.dumps(peer_settings(n, args.concurrency))
            results[tool] = run_tool(THEIRS, [str(work), str(work / "urls.txt"), settings])
        else:
            # One synset per pass over the photos, so every URL is its own candidate row.
            rows = [f"{wnids[i // len(names)]},{u}" for i, u in enumerate(urls)]
            (work / "urls.csv").write_text("wnid,url\n" + "\n".join(rows) + "\n")
            argv = [str(work / "urls.csv"), str(args.concurrency), json.dumps(wnids)]
            results[tool] = run_tool(OURS, [str(work), *argv, str(args.processes)])
        for r in results.values():
            r["rate"] = r["ok"] / r["seconds"]
    return results


def _report(results: dict[str, dict[str, float]], startup: dict[str, float]) -> float:
    """Print one pair's lines; the ratio of images per second, ours over theirs."""
    for tool, r in results.items():
        inside = (
            f", {1000 * r['timed_cpu'] / r['ok']:.2f} in the timed call" if "timed_cpu" in r else ""
        )
        print(
            f"  {tool:15s} {r['ok']:5d} ok in {r['seconds']:6.2f} s = {r['rate']:6.1f} images/s, "
            f"{1000 * r['cpu'] / r['ok']:.2f} ms CPU/image (whole tree{inside}), "
            f"peak RSS {r['rss_mb']:.0f} MB per process ({r['tree_rss_mb']:.0f} MB tree)"
        )
    theirs, ours = results["img2dataset"], results["synset-builder"]
    ratio = ours["rate"] / theirs["rate"]
    print(f"  ratio synset-builder / img2dataset: {ratio:.2f}x")
    rest = theirs["seconds"] - startup["seconds"]
    if rest > startup["seconds"]:
        warm_cpu = 1000 * (theirs["cpu"] - startup["cpu"]) / theirs["ok"]
        print(f"  against img2dataset less its start-up: {ours['rate'] * rest / theirs['ok']:.2f}x,"
              f" its CPU {warm_cpu:.2f} ms/image")  # fmt: skip
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=12_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2, help="ours: download processes")
    parser.add_argument("--runs", type=int, default=1, help="pairs, the order alternating")
    parser.add_argument("--quick", action="store_true", help="600 URLs")
    args = parser.parse_args()
    n = 600 if args.quick else args.urls

    parent, child = mp.Pipe()
    server = mp.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    port, names = parent.recv()
    urls = [
        f"http://127.0.0.1:{port}/u/{i // len(names)}/photos/{names[i % len(names)]}"
        for i in range(n)
    ]
    settings = peer_settings(n, args.concurrency)
    print(
        f"{n} URLs of real photos on 127.0.0.1, {args.concurrency} connections, "
        f"{os.cpu_count()} cores"
    )
    print(f"  img2dataset settings: {json.dumps(settings)}")
    print(f"  ours: {args.processes} process(es) x {-(-args.concurrency // args.processes)} "
          f"threads, per-host {args.concurrency} in all; {OURS_MORE}")  # fmt: skip
    ratios = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
            # img2dataset's start-up alone: one URL per process.
            work = Path(tmp) / "startup"
            work.mkdir()
            few = urls[: int(settings["processes_count"])]  # type: ignore[call-overload]
            (work / "urls.txt").write_text("\n".join(few) + "\n")
            small = peer_settings(len(few), args.concurrency)
            startup = run_tool(THEIRS, [str(work), str(work / "urls.txt"), json.dumps(small)])
            print(f"  img2dataset start-up (a {len(few)}-URL run): {startup['seconds']:.2f} s "
                  f"wall, {startup['cpu']:.2f} CPU-s")  # fmt: skip
            for run in range(args.runs):
                first = ("img2dataset", "synset-builder")[run % 2]
                before = os.getloadavg()[0]
                results = _pair(Path(tmp), urls, names, args, first)
                print(f"run {run + 1} ({first} first), load average {before:.1f} -> "
                      f"{os.getloadavg()[0]:.1f}")  # fmt: skip
                ratios.append(_report(results, startup))
    finally:
        parent.send("stop")
        server.join(5)
    ratios.sort()
    print(f"ratios over {len(ratios)} run(s): {', '.join(f'{r:.2f}x' for r in ratios)}; "
          f"median {ratios[len(ratios) // 2]:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
