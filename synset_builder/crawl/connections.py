"""Sockets for image downloads: opened only to checked addresses, ended at a deadline.

urllib3 resolves a host name itself when it connects, which would undo the
private-address check (:mod:`synset_builder.crawl.guard`): a DNS server can answer
a public address to the check and 169.254.169.254 to the connect (DNS rebinding).
So the connection classes here never resolve: each download sets, for its thread,
the addresses the guard just approved (:class:`Target`), and a new socket goes to
one of those. urllib3 still sees the host name, so the Host header, TLS SNI and
certificate verification stay on the name. A kept-alive connection is reused only
when its peer is one of the approved addresses of the current download.

Timeouts in urllib3 are per socket operation, so a server dripping a byte every few
seconds keeps a download alive for hours. :class:`Deadlines` gives each download a
wall-clock limit: one watcher thread shuts down the download's sockets when it
passes, which wakes the blocked read at once, in headers or body alike.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection


class Watch:
    """One download's deadline and the sockets it opened."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shut(sock)
            elif not any(s is sock for s in self._socks):
                self._socks.append(sock)

    def finish(self) -> bool:
        """Stop watching; False if the deadline had already struck."""
        with self._lock:
            self._done = True
            self._socks.clear()
            return not self.expired

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._socks:
                _shut(sock)
            self._socks.clear()


def _shut(sock: socket.socket) -> None:
    """Wake any thread blocked on ``sock``; it reads EOF or an error."""
    with contextlib.suppress(OSError):  # already closed: nothing is blocked on it
        sock.shutdown(socket.SHUT_RDWR)


class Deadlines:
    """One watcher thread per fetcher for all its downloads (never a thread each).

    The watcher sleeps until the earliest deadline, holds only downloads in
    progress, and ends after ``idle`` seconds without any, so a finished crawl
    leaves no thread behind. A new download wakes it only when its deadline comes
    before the one it sleeps until, which with one deadline for all is almost never:
    a wake-up per download cost a thread switch and a scan of every watch.
    """

    def __init__(self, idle: float = 5.0) -> None:
        self.idle = idle
        self._active: set[Watch] = set()
        self._cond = threading.Condition()
        self._running = False
        self._wake_at = math.inf  # when the watcher wakes unless told to

    def start(self, seconds: float) -> Watch:
        watch = Watch(time.monotonic() + seconds)
        with self._cond:
            self._active.add(watch)
            if not self._running:
                self._running = True
                self._wake_at = watch.deadline
                threading.Thread(target=self._run, name="fetch-deadlines", daemon=True).start()
            elif watch.deadline < self._wake_at:
                self._cond.notify()
        return watch

    def end(self, watch: Watch) -> bool:
        """The download is over; False if its deadline struck first."""
        with self._cond:
            self._active.discard(watch)
        return watch.finish()

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                if not self._active:
                    self._wake_at = now + self.idle
                    self._cond.wait(self.idle)
                    if not self._active:
                        self._running = False
                        return
                    continue
                due = [w for w in self._active if w.deadline <= now]
                self._active.difference_update(due)
                if not due:
                    self._wake_at = min(w.deadline for w in self._active)
                    self._cond.wait(self._wake_at - now)
            for watch in due:
                watch.expire()


@dataclass
class Target:
    """What the current thread's download may connect to, set before each request."""

    addresses: tuple[str, ...]
    watch: Watch


class _Pinned:
    """Mixed into urllib3's connections: connect to the approved addresses only."""

    local: threading.local  # set on the classes built per fetcher

    def _target(self) -> Target:
        target = getattr(self.local, "target", None)
        if target is None:  # used outside a download: refuse rather than resolve
            raise NewConnectionError(self, "no checked address for this connection")
        return target

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        target = self._target()
        error: Exception | None = None
        for address in target.addresses:
            left = max(target.watch.remaining(), 0.001)
            timeout = left if conn.timeout is None else min(conn.timeout, left)
            try:
                sock = urllib3_connection.create_connection(
                    (address, conn.port),
                    timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(self, f"Connection to {conn.host} timed out")
                error.__cause__ = exc
                continue
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                continue
            target.watch.add(sock)
            return sock
        raise error or NewConnectionError(self, "no address to connect to")

    def request(self, *args: Any, **kwargs: Any) -> None:
        conn: Any = self
        target = self._target()
        if conn.sock is not None:
            if _peer(conn.sock) in target.addresses:
                target.watch.add(conn.sock)
            else:  # kept alive from an earlier answer: reconnect to this one
                conn.close()
        super().request(*args, **kwargs)  # type: ignore[misc]


def _peer(sock: socket.socket) -> str | None:
    try:
        return str(ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0]))
    except (OSError, ValueError):
        return None


def pinned_pool_manager(local: threading.local, **kwargs: Any) -> urllib3.PoolManager:
    """A PoolManager whose connections go where ``local.target`` says, nowhere else."""
    http_conn = type("PinnedHTTPConnection", (_Pinned, HTTPConnection), {"local": local})
    https_conn = type("PinnedHTTPSConnection", (_Pinned, HTTPSConnection), {"local": local})
    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {
        "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }
    return manager
