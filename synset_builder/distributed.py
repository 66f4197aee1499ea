"""Run batches of pure work on a Dask cluster: ``--cluster local:N`` or ``tcp://HOST:PORT``.

Only the pure, CPU-bound part of a stage moves to the workers (decoding and hashing
image batches): a worker reads files from the shared store (a path every worker
sees) and returns results, and the driver writes them to the database in input
order exactly as a single-machine run does. So a cluster run gives the same rows
as a local run, and a crash of the driver resumes like any other run.

Back-ends come from the ``RUNNERS`` registry, keyed by the scheme of the spec.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

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


RUNNERS: dict[str, Callable[[str], Iterator[DaskRunner]]] = {
    "local": lambda spec: _local(spec.removeprefix("local:")),
    "tcp": _remote,
}


@contextmanager
def cluster_runner(spec: str | None) -> Iterator[BatchRunner | None]:
    """The runner for ``spec``, or None (work stays on this machine) when it is empty."""
    if not spec:
        yield None
        return
    scheme = spec.split(":", 1)[0]
    if scheme not in RUNNERS or ":" not in spec:
        raise InvalidInput(f"Unknown cluster {spec!r}; use local:N or tcp://HOST:PORT.")
    yield from RUNNERS[scheme](spec)
