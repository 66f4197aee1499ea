"""A real threaded HTTP server on 127.0.0.1 serving real photos and the bad cases.

Used by the crawl tests and ``bench/crawl.py``. Besides plain photos it serves
everything a crawler meets on the web (404, a 500 that recovers, a slow server, an
HTML page labelled image/jpeg, a truncated JPEG, a decompression bomb, a redirect
loop, ``X-Robots-Tag: noai``, a 429 with Retry-After) and answers the Openverse,
Wikimedia and Flickr search APIs in their real JSON shape, listing these photos.

Paths:
  /photos/NAME              a photo of the test set (any /r/<n>/photos/NAME too)
  /u/<n>/photos/NAME        the photo with <n> appended after its end: distinct bytes
  /png/NAME, /webp/NAME     the same photo re-encoded
  /same/a.jpg, /same/b.jpg  identical bytes at two URLs
  /big.jpg (a few MB)  /missing.jpg (404)  /flaky/KEY (500 once, then a photo)  /slow.jpg (sleeps)
  /html.jpg  /truncated.jpg  /bomb.png  /loop/a -> /loop/b -> /loop/a  /noai.jpg
  /ratelimit/KEY (429 Retry-After: 1 once, then a photo); /busy/PATH: the same for any PATH
  /openverse/v1/images/ (+ POST auth_tokens/token/)  /wikimedia/w/api.php  /flickr/rest/
"""

from __future__ import annotations

import io
import json
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "photos"


def decompression_bomb() -> bytes:
    """A valid 1-bit PNG of 20000x20000 pixels (400 Mpx) that is ~50 kB on disk."""
    side = 20_000
    row = b"\x00" + b"\x00" * (side // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def _reencode(data: bytes, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(out, fmt)
    return out.getvalue()


def _upscaled(data: bytes, factor: int) -> bytes:
    """A real photo blown up to a file of a few MB, for the byte cap."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    img.resize((img.width * factor, img.height * factor)).save(out, "JPEG", quality=98)
    return out.getvalue()


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (a byte cap, a timeout) are normal here, not errors."""

    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class PhotoServer:
    """``with PhotoServer() as server: server.url('/photos/x.JPEG')``."""

    def __init__(
        self, photos_dir: Path = PHOTOS, *, slow_seconds: float = 3.0, delay: float = 0.0
    ) -> None:
        self.delay = delay
        self.photos = {p.name: p.read_bytes() for p in sorted(Path(photos_dir).glob("*.JPEG"))}
        self.names = list(self.photos)
        self.slow_seconds = slow_seconds
        self.requests: Counter[str] = Counter()
        # path -> (query parameters, headers) of the latest request, for API tests.
        self.seen: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        # Requests being answered now, and the most at any one time.
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        first = self.photos[self.names[0]]
        self.special = {
            "/same/a.jpg": first,
            "/same/b.jpg": first,
            "/truncated.jpg": self.photos[self.names[1]][: len(self.photos[self.names[1]]) // 2],
            "/bomb.png": decompression_bomb(),
            "/big.jpg": _upscaled(first, 6),
        }
        self._converted: dict[str, bytes] = {}
        # The listen backlog is a class attribute read at bind time: 1024, not the stock 5.
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> PhotoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path: str) -> int:
        with self._lock:
            self.requests[path] += 1
            return self.requests[path]

    def converted(self, name: str, fmt: str) -> bytes:
        key = f"{fmt}/{name}"
        with self._lock:
            if key not in self._converted:
                self._converted[key] = _reencode(self.photos[name], fmt)
            return self._converted[key]

    # -- the search APIs, answering with photos whose file name matches the query --
    def matching(self, query: str) -> list[str]:
        words = [w for w in query.lower().replace("-", " ").split() if len(w) > 2]
        return [n for n in self.names if any(w in n.lower() for w in words)]

    def openverse(self, params: dict[str, str]) -> dict:
        names = self.matching(params.get("q", ""))
        size, page = int(params.get("page_size", 20)), int(params.get("page", 1))
        chunk = names[(page - 1) * size : page * size]
        return {
            "result_count": len(names),
            "page_count": (len(names) + size - 1) // size,
            "page_size": size,
            "page": page,
            "results": [
                {
                    "id": n,
                    "title": n.split(".")[0],
                    "foreign_landing_url": self.url(f"/landing/{n}"),
                    "url": self.url(f"/photos/{n}"),
                    "creator": "A. Photographer",
                    "license": "by",
                    "license_version": "4.0",
                    "provider": "test",
                    "mature": False,
                }
                for n in chunk
            ],
        }

    def wikimedia(self, params: dict[str, str]) -> dict:
        names = self.matching(params.get("gsrsearch", "").replace("filetype:bitmap", ""))
        limit, offset = int(params.get("gsrlimit", 10)), int(params.get("gsroffset", 0))
        chunk = names[offset : offset + limit]
        body: dict = {
            "batchcomplete": True,
            "query": {
                "pages": [
                    {
                        "pageid": i,
                        "ns": 6,
                        "title": f"File:{n}",
                        "index": offset + i + 1,
                        "imageinfo": [
                            {
                                "url": self.url(f"/photos/{n}"),
                                "descriptionurl": self.url(f"/wiki/File:{n}"),
                                "mime": "image/jpeg",
                                "extmetadata": {
                                    "LicenseShortName": {"value": "CC BY-SA 4.0"},
                                    "Artist": {"value": '<a href="/u/x">Jane &amp; Doe</a>'},
                                },
                            }
                        ],
                    }
                    for i, n in enumerate(chunk)
                ]
            },
        }
        if offset + limit < len(names):
            body["continue"] = {"gsroffset": offset + limit, "continue": "gsroffset||"}
        return body

    def flickr(self, params: dict[str, str]) -> dict:
        if params.get("api_key") != "test-key":
            return {"stat": "fail", "code": 100, "message": "Invalid API Key (Key not found)"}
        names = self.matching(params.get("text", ""))
        per, page = int(params.get("per_page", 100)), int(params.get("page", 1))
        chunk = names[(page - 1) * per : page * per]
        photos = [
            {
                "id": str(i),
                "owner": "1234@N00",
                "secret": "abc",
                "server": "65535",
                "title": n.split(".")[0],
                "license": "4",
                "ownername": "flickr user",
                "url_l": self.url(f"/photos/{n}"),
            }
            for i, n in enumerate(chunk)
        ]
        pages = (len(names) + per - 1) // per
        return {
            "photos": {
                "page": page,
                "pages": pages,
                "perpage": per,
                "total": len(names),
                "photo": photos,
            },
            "stat": "ok",
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def send(self, status: int, body: bytes, ctype: str = "image/jpeg", **headers: str):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key.replace("_", "-"), value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                server.count(self.path)
                if (
                    self.path == "/openverse/v1/auth_tokens/token/"
                    and form.get("client_secret") == "s3cret"
                ):
                    token = json.dumps({"access_token": "tok-1", "expires_in": 36000})
                    return self.send(200, token.encode(), "application/json")
                return self.send(401, b'{"detail": "bad credentials"}', "application/json")

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                with server._lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    self.answer()
                finally:
                    with server._lock:
                        server.active -= 1

            def answer(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                n = server.count(path)
                server.seen[path] = (params, dict(self.headers))
                first = server.photos[server.names[0]]
                if path.startswith("/busy/"):  # 429 once, then the path after /busy
                    if n == 1:
                        return self.send(429, b"busy", "text/plain", Retry_After="1")
                    path = path[5:]
                if path.startswith("/u/"):  # /u/<n>/photos/NAME: distinct bytes per n
                    k, _, rest = path[3:].partition("/")
                    name = rest.removeprefix("photos/")
                    if name in server.photos:
                        return self.send(200, server.photos[name] + f"\n{k}".encode())
                if path.startswith("/r/"):  # /r/<n>/photos/NAME: distinct URLs, same photos
                    path = "/" + path.split("/", 3)[3]
                if path.startswith("/photos/") and path[8:] in server.photos:
                    if server.delay:
                        time.sleep(server.delay)
                    return self.send(200, server.photos[path[8:]])
                if path.startswith("/png/") and path[5:] in server.photos:
                    return self.send(200, server.converted(path[5:], "PNG"), "image/png")
                if path.startswith("/webp/") and path[6:] in server.photos:
                    return self.send(200, server.converted(path[6:], "WEBP"), "image/webp")
                if path in server.special:
                    return self.send(200, server.special[path])
                if path.startswith("/flaky/"):
                    return (
                        self.send(500, b"oops", "text/plain") if n == 1 else self.send(200, first)
                    )
                if path.startswith("/ratelimit/"):
                    if n == 1:
                        return self.send(429, b"slow down", "text/plain", Retry_After="1")
                    return self.send(200, first)
                if path == "/slow.jpg":
                    time.sleep(server.slow_seconds)
                    return self.send(200, first)
                if path == "/html.jpg":
                    return self.send(200, b"<!doctype html><html><body>hello</body></html>")
                if path == "/noai.jpg":
                    return self.send(200, first, X_Robots_Tag="noai")
                if path in ("/loop/a", "/loop/b"):
                    other = "/loop/b" if path == "/loop/a" else "/loop/a"
                    return self.send(302, b"", "text/plain", Location=other)
                api = {
                    "/openverse/v1/images/": server.openverse,
                    "/wikimedia/w/api.php": server.wikimedia,
                    "/flickr/rest/": server.flickr,
                }
                if path in api:
                    return self.send(
                        200, json.dumps(api[path](params)).encode(), "application/json"
                    )
                return self.send(404, b"not found", "text/plain")

        return Handler
