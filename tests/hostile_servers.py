"""Servers on loopback that attack the crawler: a slow drip, a DNS answer that
changes, and image APIs whose text fields are long or carry NUL bytes.

Every server binds a 127.0.0.0/8 address; nothing here sends or redirects traffic
anywhere else.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.photo_server import PhotoServer, _QuietServer


class DripServer:
    """Serves a photo one byte at a time, ``interval`` s apart, for ``drip_for`` s.

    ``phase``: ``body`` drips after honest headers with a Content-Length;
    ``headers`` drips the status line and headers themselves; ``close`` drips a body
    with no length (its end is the connection's end, so a cut looks complete).
    After ``drip_for`` seconds the rest goes at once, so a client without a
    deadline gets the whole photo in the end. Requests after the first ``drips``
    are answered at once: the host "recovers" for ``--retry-failed``.
    """

    def __init__(
        self,
        body: bytes,
        *,
        phase: str = "body",
        interval: float = 0.05,
        drip_for: float = 8.0,
        drips: int = 1,
        host: str = "127.0.0.1",
    ) -> None:
        self.body, self.phase, self.interval, self.drip_for = body, phase, interval, drip_for
        self.drips = drips
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.httpd = _QuietServer((host, 0), self._handler())
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/drip.jpg") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests[self.path] += 1
                    n = sum(server.requests.values())
                length = (
                    "" if server.phase == "close" else f"Content-Length: {len(server.body)}\r\n"
                )
                head = f"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n{length}"
                head += "Connection: close\r\n\r\n" if server.phase == "close" else "\r\n"
                data = head.encode() + server.body
                start = 0 if server.phase == "headers" else len(head)
                if n > server.drips:
                    start = len(data)
                self.wfile.write(data[:start])
                stop = time.monotonic() + server.drip_for
                i = start
                while i < len(data) and time.monotonic() < stop:
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    i += 1
                    time.sleep(server.interval)
                self.wfile.write(data[i:])
                self.close_connection = True

        return Handler


class Recorder:
    """A photo server on one loopback address that records each request's Host header.

    Several recorders can share a port on different 127.x addresses, so one URL's
    host name can lead to either: which one was reached shows where the crawler
    connected.
    """

    def __init__(
        self,
        photo: bytes,
        host: str,
        port: int = 0,
        *,
        redirect: str = "",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.photo, self.redirect = photo, redirect
        self.hosts: list[tuple[str, str]] = []  # (path, Host header)
        self.sni: list[str | None] = []  # with ``tls``: the name each client asked for
        self.httpd = _QuietServer((host, port), self._handler())
        self.host, self.port = self.httpd.server_address[:2]
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hosts.append((self.path, self.headers.get("Host", "")))
                if self.path == "/hop" and server.redirect:
                    body, status, extra = b"", 302, {"Location": server.redirect}
                else:
                    body, status, extra = server.photo, 200, {}
                self.send_response(status)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


def recorders_on_one_port(photo: bytes, hosts: Sequence[str], **kw: Any) -> list[Recorder]:
    """Recorders on ``hosts`` (loopback addresses) that all listen on one port."""
    for _ in range(20):
        first = Recorder(photo, hosts[0], **kw)
        try:
            return [first, *(Recorder(photo, h, first.port, **kw) for h in hosts[1:])]
        except OSError:  # that port is taken on another address: try another
            first.httpd.server_close()
    raise RuntimeError("no free port shared by the loopback addresses")


class ScriptedResolver:
    """A DNS that answers from a script, one answer per lookup (the last repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers[min(len(self.asked), len(self.answers)) - 1]


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- image APIs whose text fields are hostile -------------------------------------------

NUL = "\x00"
LONG_CREATOR = "Jane" + NUL + " Doe, " + "with a very long biography " * 20  # > 300
LONG_LICENCE = "cc-by-sa" + NUL + " " + "and a licence text pasted in full " * 5  # > 100
TITLE = "Title\x00with\tcontrol\x07chars\ud800 and\n\nnewlines"


class HostileApis(PhotoServer):
    """The photo server's Openverse, Wikimedia and Flickr answers, with hostile text.

    Each source's hit points at its own copy of the photo (``/u/<k>/``: distinct
    bytes, so each becomes a candidate), with a NUL and long text in every field;
    each answer also lists one URL with a NUL in its path (a 404: a failure row
    carrying the same text).
    """

    def _photo_urls(self, k: int, name: str) -> tuple[str, str]:
        return self.url(f"/u/{k}/photos/{name}") + "\n", self.url(f"/photos/{name}{NUL}{k}")

    def openverse(self, params: dict[str, str]) -> dict:
        body = super().openverse(params)
        results = []
        for item in body["results"]:
            good, bad = self._photo_urls(1, item["id"])
            for url in (good, bad):
                results.append(
                    {
                        **item,
                        "url": url,
                        "creator": LONG_CREATOR,
                        "license": LONG_LICENCE,
                        "license_version": "4.0" + NUL,
                        "title": TITLE,
                        "foreign_landing_url": item["foreign_landing_url"] + NUL,
                    }
                )
        return {**body, "results": results}

    def wikimedia(self, params: dict[str, str]) -> dict:
        body = super().wikimedia(params)
        pages = []
        for page in body["query"]["pages"]:
            info = page["imageinfo"][0]
            name = page["title"].removeprefix("File:")
            for i, url in enumerate(self._photo_urls(2, name)):
                meta = {
                    "LicenseShortName": {"value": LONG_LICENCE},
                    "Artist": {"value": f"<a href='/u'>{LONG_CREATOR}</a>&#1;"},
                }
                pages.append(
                    {
                        **page,
                        "index": 2 * page["index"] + i,
                        "title": "File:" + TITLE,
                        "imageinfo": [
                            {**info, "url": url, "descriptionurl": info["descriptionurl"] + NUL}
                            | {"extmetadata": meta}
                        ],
                    }
                )
        body["query"]["pages"] = pages
        return body

    def flickr(self, params: dict[str, str]) -> dict:
        body = super().flickr(params)
        photos = []
        for photo in body.get("photos", {}).get("photo", []):
            name = photo["url_l"].rsplit("/", 1)[1]
            for url in self._photo_urls(3, name):
                photos.append({**photo, "url_l": url, "ownername": LONG_CREATOR, "title": TITLE})
        if "photos" in body:
            body["photos"]["photo"] = photos
        return body
