"""Download one hit safely: the unit of work the crawler runs in parallel.

Everything that can go wrong with a URL from a search result is caught here and
turned into a short reason stored as data (``timeout``, ``http_404``,
``not_an_image``, ``too_large``, ``decompression_bomb``, ``robots``,
``private_address``, ``redirect_loop``, ...), never an exception that stops a
crawl. Guards follow img2dataset's lead (X-Robots-Tag) and the usual SSRF
advice: every redirect hop is resolved and checked against private, loopback and
link-local ranges (:mod:`synset_builder.crawl.guard`), and the connection goes to
the very address that was checked (:mod:`synset_builder.crawl.connections`),
because a crawler fed by search results must not reach a cloud metadata service.
Each download has a wall-clock deadline as well as per-read timeouts: a server
that drips a byte at a time must not hold a crawl (and the good images of its
result page) for hours.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as HTTPTimeout

from synset_builder.crawl.connections import Deadlines, Target, Watch, pinned_pool_manager
from synset_builder.crawl.guard import AddressRefused, Resolver, resolve_checked, system_resolve
from synset_builder.crawl.store import (
    DEFAULT_MAX_PIXELS,
    BadImage,
    ImageInfo,
    downscale,
    inspect_image,
    store_bytes,
)

if TYPE_CHECKING:
    # Only a type here: this module must import without SQLAlchemy (the download
    # worker processes of :mod:`synset_builder.crawl.workers` import it).
    from synset_builder.crawl.sources import Hit

ROBOTS_DENY = {"noai", "noimageai", "noindex", "noimageindex", "none"}
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
# A socket timeout this close to the deadline counts as the deadline (clock granularity).
_SLACK = 0.05
# The longest any server's Retry-After is honoured, downloads and search APIs alike.
MAX_RETRY_AFTER = 120.0


@dataclass(frozen=True)
class FetchConfig:
    """How politely and how defensively one URL is fetched."""

    user_agent: str
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    # Wall-clock seconds for one download, redirects included (SYNSET_DOWNLOAD_DEADLINE).
    deadline: float = 60.0
    retries: int = 2
    backoff: float = 0.5
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_redirects: int = 5
    max_retry_after: float = 30.0
    per_host: int = 8
    allow_private: bool = False
    honour_robots: bool = True
    max_side: int | None = None


@dataclass(frozen=True)
class Fetched:
    hit: Hit
    info: ImageInfo
    path: str
    attempts: int


@dataclass(frozen=True)
class Failed:
    hit: Hit
    reason: str
    detail: str
    attempts: int


Outcome = Fetched | Failed


class Download(NamedTuple):
    """What one URL came to, without its hit: a stored file (``info``) or a refusal (``reason``).

    The download worker processes send these back to the driver, which holds the
    hits; a tuple pickles in a fraction of the time a hit with its provenance would.
    """

    info: ImageInfo | None
    path: str
    reason: str
    detail: str
    attempts: int

    def outcome(self, hit: Hit) -> Outcome:
        if self.info is None:
            return Failed(hit, self.reason, self.detail, self.attempts)
        return Fetched(hit, self.info, self.path, self.attempts)


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """Seconds the server asked us to wait (RFC 9110: delta-seconds or a date)."""
    value = headers.get("Retry-After", "").strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    if value:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return default
        return min(max(0.0, when - time.time()), MAX_RETRY_AFTER)
    return default


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter

# host -> a context manager held around each download attempt from that host.
HostSlots = Callable[[str], AbstractContextManager[object]]


class LocalHostSlots:
    """``--per-host`` within one process: a bounded semaphore per host name.

    On a Dask cluster :class:`synset_builder.distributed.ClusterHostSlots` takes its
    place, so the limit holds across every worker.
    """

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._lock = threading.Lock()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}

    def __call__(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            if host not in self._hosts:
                self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return self._hosts[host]


class _Refused(Exception):
    def __init__(self, reason: str, detail: str = "", retry: bool = False, wait: float = 0):
        super().__init__(detail)
        self.reason, self.detail, self.retry, self.wait = reason, detail, retry, wait
        self.attempts = 1


def robots_forbid(values: list[str], agent: str) -> bool:
    """True when an X-Robots-Tag header tells crawlers like us to keep away.

    Directives may be scoped (``otherbot: noindex``); those only bind that agent.
    """
    ours = agent.split("/", 1)[0].lower()
    for value in values:
        for part in value.split(","):
            scope, sep, directive = part.rpartition(":")
            if sep and scope.strip().lower() not in {"", "*", ours}:
                continue
            if directive.strip().lower() in ROBOTS_DENY:
                return True
    return False


def _drop(response: urllib3.BaseHTTPResponse) -> None:
    """Close a connection whose body was not read, so it is never reused mid-stream."""
    response.close()
    response.release_conn()


def bound_heap() -> None:
    """Keep download buffers from fragmenting the heap of a many-threaded process.

    glibc gives threads their own arenas and, after the first large free, raises
    its mmap threshold, so image buffers of a hundred kilobytes land in arenas and RSS
    creeps up with every URL. A fixed 64 kB threshold hands those buffers back to the
    kernel on free, and RSS stays flat.
    No library does this; it is a no-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)
    except (OSError, AttributeError):
        return


class Fetcher:
    """Fetches hits from many threads: one urllib3 pool manager, a cap per host.

    urllib3 rather than requests: the same connection pools for about half the CPU
    per request (measured on loopback, docs/benchmarks.md), and CPU is the budget.
    """

    def __init__(
        self,
        cfg: FetchConfig,
        data_dir: Path,
        host_slots: HostSlots | None = None,
        resolve: Resolver = system_resolve,
        *,
        durable: bool = True,
    ) -> None:
        self.cfg = cfg
        # False: files are not fsynced one by one; the caller syncs before committing.
        self.durable = durable
        self.data_dir = Path(data_dir)
        # The download under way in each thread: where its connections may go.
        self._local = threading.local()
        self._http = pinned_pool_manager(
            self._local,
            num_pools=256,
            maxsize=cfg.per_host,
            retries=False,
            headers={"User-Agent": cfg.user_agent, "Accept": "image/*;q=0.9,*/*;q=0.1"},
        )
        self._host_slot = host_slots or LocalHostSlots(cfg.per_host)
        self._resolve = resolve
        self._deadlines = Deadlines()

    def _checked(self, url: str) -> tuple[str, ...]:
        """Resolve the URL's host now and return its addresses, if all may be reached.

        Called for every hop of every download: nothing is remembered, so a later
        DNS answer is checked as carefully as the first.
        """
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise _Refused("bad_url", f"bad port in {url[:200]}") from exc
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise _Refused("bad_url", f"not an http(s) URL: {url[:200]}")
        try:
            return resolve_checked(
                self._resolve, parts.hostname, port, allow_private=self.cfg.allow_private
            )
        except AddressRefused as exc:
            raise _Refused("private_address", str(exc)) from exc
        except UnicodeError as exc:  # a host name IDNA cannot encode
            raise _Refused("bad_url", f"bad host name in {url[:200]}") from exc
        except OSError as exc:
            raise _Refused("dns_error", str(exc), retry=True) from exc

    def _download(self, url: str) -> bytes:
        """One attempt within the deadline; past it, ``timeout`` that is not retried."""
        watch = self._deadlines.start(self.cfg.deadline)
        try:
            return self._follow(url, watch)
        except Exception as exc:
            # A read cut by the watcher, or one whose timeout was the time left, is
            # the deadline's doing: say so, and do not try again in this run.
            if self._deadlines.end(watch) and watch.remaining() > _SLACK:
                raise
            raise self._too_slow() from exc
        finally:
            self._deadlines.end(watch)
            self._local.target = None

    def _too_slow(self) -> _Refused:
        return _Refused("timeout", f"not done within {self.cfg.deadline:g} s (deadline)")

    def _follow(self, url: str, watch: Watch) -> bytes:
        """Follow redirects by hand (each hop checked and pinned), stream with a cap."""
        seen = {url}
        for _hop in range(self.cfg.max_redirects + 1):
            self._local.target = Target(self._checked(url), watch)
            left = watch.remaining()
            if left <= 0:
                raise self._too_slow()
            timeout = urllib3.Timeout(
                connect=min(self.cfg.connect_timeout, left), read=min(self.cfg.read_timeout, left)
            )
            response = self._http.request(
                "GET", url, preload_content=False, redirect=False, timeout=timeout
            )
            try:
                status = response.status
                if status in _REDIRECTS and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    if url in seen:
                        raise _Refused("redirect_loop", url[:200])
                    seen.add(url)
                    _drop(response)
                    continue
                if status == 429:
                    wait = retry_after(response.headers, self.cfg.backoff)
                    wait = min(wait, self.cfg.max_retry_after)
                    raise _Refused("http_429", "rate limited", retry=True, wait=wait)
                if status >= 500:
                    raise _Refused(f"http_{status}", response.reason or "", retry=True)
                if status >= 400 or status < 200:
                    raise _Refused(f"http_{status}", response.reason or "")
                robots = response.headers.getlist("X-Robots-Tag")
                if self.cfg.honour_robots and robots_forbid(robots, self.cfg.user_agent):
                    raise _Refused("robots", ", ".join(robots))
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > self.cfg.max_bytes:
                    raise _Refused("too_large", f"Content-Length {length}")
                chunks, total = [], 0
                # A told length is read in one go (capped); a wrong one is still caught.
                size = int(length) + 1 if length.isdigit() else _CHUNK
                for chunk in response.stream(max(size, _CHUNK)):
                    total += len(chunk)
                    if total > self.cfg.max_bytes:
                        raise _Refused("too_large", f"over {self.cfg.max_bytes} bytes")
                    chunks.append(chunk)
                if not self._deadlines.end(watch):  # a cut-off body can look complete
                    raise self._too_slow()
                response.release_conn()  # body fully read: the connection is reusable
                return b"".join(chunks)
            except BaseException:
                _drop(response)
                raise
        raise _Refused("too_many_redirects", f"more than {self.cfg.max_redirects}")

    def _read_local(self, path: str) -> bytes:
        try:
            size = Path(path).stat().st_size
            if size > self.cfg.max_bytes:
                raise _Refused("too_large", f"{size} bytes")
            return Path(path).read_bytes()
        except OSError as exc:
            raise _Refused("unreadable", str(exc)) from exc

    def _get(self, url: str, local_path: str | None) -> tuple[bytes, int]:
        """The bytes of a URL after retries (timeouts, 5xx and 429 only)."""
        if local_path:
            return self._read_local(local_path), 1
        host = urlsplit(url).hostname or ""
        delay = self.cfg.backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._host_slot(host):
                    return self._download(url), attempt
            except NewConnectionError as exc:  # a subclass of urllib3's TimeoutError
                refusal = _Refused("connection_error", str(exc)[:200], retry=True)
            except HTTPTimeout as exc:
                refusal = _Refused("timeout", str(exc)[:200], retry=True)
            except (ProtocolError, HTTPError, OSError) as exc:
                reason = "timeout" if "timed out" in str(exc).lower() else "connection_error"
                refusal = _Refused(reason, str(exc)[:200], retry=True)
            except _Refused as exc:
                refusal = exc
            if not refusal.retry or attempt > self.cfg.retries:
                refusal.attempts = attempt
                raise refusal
            time.sleep(refusal.wait or delay)
            delay *= 2

    def fetch(self, hit: Hit) -> Outcome:
        """Download, validate and store one hit; every failure comes back as data."""
        return self.download(hit.url, hit.local_path).outcome(hit)

    def download(self, url: str, local_path: str | None = None) -> Download:
        """:meth:`fetch` for a bare URL (or a local file, read in place)."""
        attempts = 1
        try:
            data, attempts = self._get(url, local_path)
            if self.cfg.max_side:
                data = downscale(data, self.cfg.max_side, max_pixels=self.cfg.max_pixels)
            info = inspect_image(data, max_pixels=self.cfg.max_pixels)
            if local_path and not self.cfg.max_side:
                path = local_path
            else:
                path = store_bytes(
                    self.data_dir, data, info.ext, sha256=info.sha256, durable=self.durable
                )
        except _Refused as exc:
            return Download(None, "", exc.reason, exc.detail, exc.attempts)
        except BadImage as exc:
            return Download(None, "", exc.reason, exc.detail[:500], attempts)
        return Download(info, path, "", "", attempts)
