"""Crawl benchmark: this crawler and img2dataset side by side on the same URLs.

One threaded server on 127.0.0.1 (its own process, listen backlog 1024) serves
the real test photos under N distinct URLs, each with distinct bytes (a tag after
the JPEG's end), so both tools must write N files. Each tool runs in its own
process with the same total number of connections: img2dataset with 2 processes
x C/2 threads, ``output_format=files``, no resizing, 500 samples per shard; ours
with a C-thread pool, per-host cap C, and every candidate and its provenance
written to a SQLite database (files fsynced). Only the download call is timed;
peak RSS is sampled over each tool's process tree.

    .venv/bin/python bench/crawl.py            # 3,000 URLs
    .venv/bin/python bench/crawl.py --quick    # 600 URLs
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
    from synset_builder.crawl.run import CrawlConfig, crawl
    from synset_builder.db import migrate
    from synset_builder.db.models import Candidate, Synset
    from synset_builder.db.session import make_engine, session_scope
    from synset_builder.crawl.fetch import FetchConfig
    from synset_builder.crawl.sources import make_source
    from sqlalchemy import func, select

    work, urls, conc = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    wnids = json.loads(sys.argv[4])
    db = f"sqlite:///{work / 'synset.db'}"
    migrate.upgrade(db)
    settings = Settings(database_url=db, data_dir=work / "data", allow_private_networks=True)
    engine = make_engine(db)
    with session_scope(engine) as s:
        for w in wnids:
            s.add(Synset(wnid=w, name=w, lemmas=[w], target=True))
    fetch = FetchConfig(user_agent="synset-bench", per_host=conc, allow_private=True, retries=0)
    cfg = CrawlConfig(fetch=fetch, per_synset=10**6, concurrency=conc, progress=False)
    with session_scope(engine) as s:
        t0 = time.perf_counter()
        crawl(s, settings.data_dir, [make_source(f"urls:{urls}", settings)], cfg)
        took = time.perf_counter() - t0
        n = s.scalar(select(func.count()).select_from(Candidate))
    import resource
    cpu = sum(
        resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    print(json.dumps({"seconds": took, "ok": n, "cpu": cpu}))
    """
)

THEIRS = textwrap.dedent(
    """
    import json, sys, time, glob
    from img2dataset import download

    work, urls, conc = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = time.perf_counter()
    download(
        url_list=urls, output_folder=work + "/out", processes_count=2, thread_count=conc // 2,
        output_format="files", input_format="txt", resize_mode="no", number_sample_per_shard=500,
        timeout=10, retries=0, enable_wandb=False, distributor="multiprocessing",
        compute_hash="sha256", disallowed_header_directives=[],
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
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
    # Ours: one synset per pass over the photos, so every URL is its own candidate row.
    wnids = [f"n{9000000 + k:08d}" for k in range((n + len(names) - 1) // len(names))]
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
            for tool in ("img2dataset", "synset-builder"):
                work = Path(tmp) / tool
                work.mkdir()
                if tool == "img2dataset":
                    (work / "urls.txt").write_text("\n".join(urls) + "\n")
                    argv = [str(work), str(work / "urls.txt"), str(args.concurrency)]
                    results[tool] = run_tool(THEIRS, argv)
                else:
                    rows = [f"{wnids[i // len(names)]},{u}" for i, u in enumerate(urls)]
                    (work / "urls.csv").write_text("wnid,url\n" + "\n".join(rows) + "\n")
                    argv = [
                        str(work),
                        str(work / "urls.csv"),
                        str(args.concurrency),
                        json.dumps(wnids),
                    ]
                    results[tool] = run_tool(OURS, argv)
    finally:
        parent.send("stop")
        server.join(5)

    print(
        f"{n} URLs of real photos on 127.0.0.1, {args.concurrency} connections, "
        f"{os.cpu_count()} cores"
    )
    for tool, r in results.items():
        rate = r["ok"] / r["seconds"]
        r["rate"] = rate
        print(
            f"  {tool:15s} {r['ok']:5d} ok in {r['seconds']:6.2f} s = {rate:6.1f} images/s, "
            f"{1000 * r['cpu'] / r['ok']:.1f} ms CPU/image, "
            f"peak RSS {r['rss_mb']:.0f} MB per process ({r['tree_rss_mb']:.0f} MB tree)"
        )
    ratio = results["synset-builder"]["rate"] / results["img2dataset"]["rate"]
    print(f"  ratio synset-builder / img2dataset: {ratio:.2f}x")


if __name__ == "__main__":
    main()
