"""Run a stage's work on a Dask cluster: ``--cluster local:N`` or ``tcp://HOST:PORT``.

Workers do the work *and* write its rows: they open their own connection to the
shared database (the driver's URL) and read and write files in the shared store (a
path every worker sees). What each stage sends out, and why the rows still equal a
single-machine run, is in :mod:`synset_builder.crawl.cluster` and
:mod:`synset_builder.clean.batches`. This module holds what both need: the client
(``RUNNERS`` registry, keyed by the scheme of the spec), a database engine per
worker process, and ``--per-host`` as a cluster-wide Dask semaphore.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from synset_builder.db.session import make_engine
from synset_builder.errors import InvalidInput, SynsetError

WINDOW_PER_WORKER = 4  # batches in flight per worker: bounded memory on the driver


class ClusterUnavailable(SynsetError):
    """The Dask scheduler cannot be reached or the local cluster cannot start."""

    exit_code = 3


class BatchRunner(Protocol):
    """Maps a picklable function over batches; results come back in input order."""

    batch_size: int

    def map(self, fn: Callable[[Any], Any], batches: list[Any]) -> Iterator[Any]: ...


class DaskRunner:
    """Submits batches to a Dask client, a bounded window at a time, yields in order."""

    batch_size = 32

    def __init__(self, client: Any) -> None:  # a distributed.Client
        self.client = client

    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def threads(self) -> int:
        """Tasks the cluster runs at once (all worker threads)."""
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable[[Any], Any], batches: list[Any]) -> Iterator[Any]:
        window = WINDOW_PER_WORKER * self.workers()
        pending: deque[Any] = deque()
        for batch in batches:
            pending.append(self.client.submit(fn, batch, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _local(arg: str) -> Iterator[DaskRunner]:
    from distributed import Client, LocalCluster

    if not arg.isdigit() or int(arg) < 1:
        raise InvalidInput(f"Use --cluster local:N with N a number of workers, not {arg!r}.")
    try:
        cluster = LocalCluster(
            n_workers=int(arg),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(f"Cannot start a local Dask cluster: {exc}.") from exc
    with cluster, Client(cluster) as client:
        yield DaskRunner(client)


def _remote(address: str) -> Iterator[DaskRunner]:
    from distributed import Client

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ClusterUnavailable(f"Cannot reach the Dask scheduler at {address}: {exc}.") from exc
    with client:
        yield DaskRunner(client)


def worker_url(session: Session) -> str:
    """The driver's database URL as a worker must be given it.

    The password stays in (workers connect as the driver does), and a relative
    SQLite path is made absolute: a ``dask worker`` runs in a folder of its own.
    """
    url = session.get_bind().url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    return url.render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def worker_engine(database_url: str) -> Engine:
    """One engine (a small connection pool) per worker process and database.

    A worker runs thousands of small tasks; a pool per task would pay a connection
    handshake each time. Cached for the life of the process, which is the life of
    the Dask worker; the engine replaces connections the server dropped (``db.session``).
    """
    return make_engine(database_url, pool_size=2, max_overflow=8)


class ClusterHostSlots:
    """``--per-host`` for a whole cluster: one ``distributed.Semaphore`` per host.

    Leases are held on the scheduler, so N worker processes together never have more
    than ``per_host`` downloads open to one host; a dead worker's leases expire
    (``distributed.scheduler.locks.lease-timeout``). The semaphore name carries the
    limit because the scheduler refuses to re-register a name with another
    ``max_leases``: crawls with the same ``--per-host`` share their slots.
    Built in a task thread (it needs the worker's scheduler connection and event
    loop), then used from the task's download threads.
    """

    def __init__(self, per_host: int, worker: Any) -> None:  # a distributed.Worker
        self.per_host = per_host
        self._scheduler = worker.scheduler
        self._loop = worker.loop
        self._lock = threading.Lock()
        self._slots: dict[str, Any] = {}

    def _semaphore(self, host: str) -> Any:
        from distributed import Semaphore

        with self._lock:
            if host not in self._slots:
                sem = Semaphore(
                    max_leases=self.per_host,
                    name=f"synset-host:{self.per_host}:{host}",
                    scheduler_rpc=self._scheduler,
                    loop=self._loop,
                )
                sem.register()
                self._slots[host] = sem
            return self._slots[host]

    @contextmanager
    def __call__(self, host: str) -> Iterator[None]:
        sem = self._semaphore(host)
        sem.acquire()
        try:
            yield
        finally:
            sem.release()


RUNNERS: dict[str, Callable[[str], Iterator[DaskRunner]]] = {
    "local": lambda spec: _local(spec.removeprefix("local:")),
    "tcp": _remote,
}


@contextmanager
def cluster_runner(spec: str | None) -> Iterator[DaskRunner | None]:
    """The runner for ``spec``, or None (work stays on this machine) when it is empty."""
    if not spec:
        yield None
        return
    scheme = spec.split(":", 1)[0]
    if scheme not in RUNNERS or ":" not in spec:
        raise InvalidInput(f"Unknown cluster {spec!r}; use local:N or tcp://HOST:PORT.")
    yield from RUNNERS[scheme](spec)
