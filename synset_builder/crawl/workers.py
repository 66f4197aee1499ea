"""Download worker processes for a local crawl: more than one core for fetch, check and store.

One process downloads, checks and stores at most about one core's worth of images
(the GIL), so with ``CrawlConfig.processes`` above one the local executor
(:mod:`synset_builder.crawl.local`) hands the URLs to that many worker processes
of ``concurrency / processes`` threads each, and stays the one writer of the
database. What keeps the hand-off cheap:

* A worker imports only what a download needs (:mod:`~synset_builder.crawl.fetch`:
  urllib3, Pillow, the guard and the store's file functions), never SQLAlchemy, the
  settings or the sources, so it starts in a fraction of the driver's start-up. It
  is its own ``python -c`` process, not a ``multiprocessing`` child, which would
  import the caller's ``__main__`` (the CLI and everything behind it).
* URLs go out and :class:`~synset_builder.crawl.fetch.Download` tuples come back in
  batches over two pipes per worker: one pickle and one write per batch, not per
  image. The hits, with their provenance, never leave the driver.
* The SSRF guard, the byte and pixel caps and the deadline are the fetcher's own, so
  they apply in a worker exactly as in a thread of the driver; ``--per-host`` is
  split between the workers so the cap on one host holds in total.

Files are written without fsync; the driver syncs the store's filesystem before it
commits rows that name them, as it does for its own threads. A worker whose driver
dies reads the end of its pipe and exits; what it was writing stays in ``tmp/`` under
its pid, for :func:`~synset_builder.crawl.store.sweep_temp`.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from queue import Empty, SimpleQueue

from synset_builder.crawl.fetch import Download, FetchConfig, Fetcher, bound_heap

# A job: (token, URL, local path). A result: (token, Download, or a bug's traceback).
Job = tuple[int, str, str | None]
Result = tuple[int, Download | str]
# How long a worker waits to fill a batch after its first result; results are in
# flight by the hundred, so this costs no throughput and saves the driver wake-ups.
LINGER = 0.005


class WorkerFailed(RuntimeError):
    """A worker process died or hit a bug; the crawl stops (what was written stays)."""


class _Worker:
    """The driver's end of one worker process."""

    def __init__(self, cfg: FetchConfig, data_dir: Path, threads: int) -> None:
        jobs_r, self.jobs_w = os.pipe()
        self.results_r, results_w = os.pipe()
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        code = "import sys; from synset_builder.crawl.workers import main; main(sys.argv[1:])"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(jobs_r), str(results_w)],
            pass_fds=(jobs_r, results_w),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(jobs_r)
        os.close(results_w)
        self.jobs = Connection(self.jobs_w, readable=False)
        self.results = Connection(self.results_r, writable=False)
        self.jobs.send_bytes(pickle.dumps((cfg, str(data_dir), threads)))
        self.outbox: list[Job] = []
        self.in_flight = 0

    def failed(self) -> WorkerFailed:
        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        return WorkerFailed(f"download worker {self.proc.pid} exited (status {code})")


class DownloadWorkers:
    """``processes`` worker processes that download, check and store URLs for the driver."""

    def __init__(self, cfg: FetchConfig, data_dir: Path, processes: int, concurrency: int) -> None:
        threads = -(-concurrency // processes)
        # --per-host holds across the workers: each gets its share.
        cfg = replace(cfg, per_host=max(1, cfg.per_host // processes))
        self._workers = [_Worker(cfg, data_dir, threads) for _ in range(processes)]

    def send(self, token: int, url: str, local_path: str | None) -> None:
        """Queue a URL for the least busy worker (sent at the next :meth:`receive`)."""
        worker = min(self._workers, key=lambda w: w.in_flight + len(w.outbox))
        worker.outbox.append((token, url, local_path))

    def receive(self, timeout: float) -> list[Result]:
        """Send what is queued, then the results that arrive within ``timeout`` seconds."""
        for worker in self._workers:
            if worker.outbox:
                try:
                    worker.jobs.send_bytes(pickle.dumps(worker.outbox, pickle.HIGHEST_PROTOCOL))
                except OSError as exc:  # its end of the pipe is gone
                    raise worker.failed() from exc
                worker.in_flight += len(worker.outbox)
                worker.outbox = []
        if not any(w.in_flight for w in self._workers):
            return []
        by_conn = {w.results: w for w in self._workers}
        got: list[Result] = []
        for conn in wait(list(by_conn), timeout):
            worker = by_conn[conn]  # type: ignore[index]
            try:
                batch: list[Result] = pickle.loads(worker.results.recv_bytes())
            except (EOFError, OSError) as exc:
                raise worker.failed() from exc
            worker.in_flight -= len(batch)
            got.extend(batch)
        return got

    def close(self) -> None:
        """End every worker: the end of its job pipe tells it to exit."""
        for worker in self._workers:
            worker.jobs.close()
        for worker in self._workers:
            try:
                worker.proc.wait(10)
            except subprocess.TimeoutExpired:  # a download stuck past its deadline
                worker.proc.kill()
                worker.proc.wait()
            worker.results.close()


def _fetch_loop(fetcher: Fetcher, todo: SimpleQueue[Job | None], done: SimpleQueue[Result]) -> None:
    while (job := todo.get()) is not None:
        token, url, local_path = job
        try:
            done.put((token, fetcher.download(url, local_path)))
        except BaseException:  # a bug, not a bad URL: the driver raises it
            done.put((token, traceback.format_exc()))


def _send_loop(out: Connection, done: SimpleQueue[Result]) -> None:
    """Send results in batches: the first one, and what else came ``LINGER`` after it.

    One sleep, not a wait per result: this thread wakes once per batch.
    """
    while True:
        batch = [done.get()]
        time.sleep(LINGER)
        try:
            while True:
                batch.append(done.get_nowait())
        except Empty:
            pass
        out.send_bytes(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))


def main(argv: list[str]) -> None:
    """A worker process: read jobs until the driver closes the pipe, then exit at once."""
    jobs = Connection(int(argv[0]), writable=False)
    out = Connection(int(argv[1]), readable=False)
    cfg, data_dir, threads = pickle.loads(jobs.recv_bytes())
    bound_heap()
    fetcher = Fetcher(cfg, Path(data_dir), durable=False)
    todo: SimpleQueue[Job | None] = SimpleQueue()
    done: SimpleQueue[Result] = SimpleQueue()
    for _ in range(threads):
        threading.Thread(target=_fetch_loop, args=(fetcher, todo, done), daemon=True).start()
    threading.Thread(target=_send_loop, args=(out, done), daemon=True).start()
    try:
        while True:
            for job in pickle.loads(jobs.recv_bytes()):
                todo.put(job)
    except (EOFError, OSError):
        pass
    # The driver is done or gone: nobody reads what is still in flight.
    os._exit(0)
