"""Files an earlier (or interrupted) run of an export already rendered.

Rendering is the expensive part of an export. Each file written into the
imagefolder layout is appended to ``OUT/.render-cache.csv`` with the pixel
settings that made it and its checksum, flushed at once; a later run with the
same settings reads the file back instead of decoding the original again,
after checking the checksum, so a crash, a Ctrl-C or a re-export after a few new
images costs only the new work.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from synset_builder.export.formats import write_lines
from synset_builder.export.render import RENDER_VERSION, Rendered, RenderSpec

COLUMNS = ("sha256", "render", "file_sha256", "width", "height", "faces", "path")


@dataclass(frozen=True)
class Cached:
    sha256: str
    file_sha256: str
    width: int
    height: int
    faces: int
    path: str


class RenderCache:
    NAME = ".render-cache.csv"

    def __init__(self, out: Path, spec: RenderSpec) -> None:
        self.out = out
        self.file = out / self.NAME
        # Files made by another version of the renderer are other pixels: not reused.
        self.key = json.dumps({**spec.as_json(), "version": RENDER_VERSION}, sort_keys=True)
        self.entries: dict[str, Cached] = {}
        if self.file.is_file():
            with self.file.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    try:
                        if row["render"] == self.key:
                            self.entries[row["sha256"]] = Cached(
                                row["sha256"],
                                row["file_sha256"],
                                int(row["width"]),
                                int(row["height"]),
                                int(row["faces"]),
                                row["path"],
                            )
                    except (KeyError, TypeError, ValueError):
                        continue  # a line cut short by a crash
        new = not self.file.is_file()
        self.handle = self.file.open("a", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle, lineterminator="\n")
        if new:
            self.writer.writerow(COLUMNS)
            self.handle.flush()

    def hit(self, sha: str) -> Cached | None:
        """The cached rendering of this image, if its file is still there."""
        found = self.entries.get(sha)
        if found is not None and (self.out / found.path).is_file():
            return found
        return None

    def load(self, hit: Cached) -> Rendered | None:
        """The bytes of a cached file, or None if it changed since it was written."""
        try:
            data = (self.out / hit.path).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != hit.file_sha256:
            return None
        return Rendered(
            hit.sha256, data, hit.width, hit.height, hit.faces, file_sha256=hit.file_sha256
        )

    def record(self, done: Rendered, path: str, digest: str) -> None:
        """Note a file just written at ``path`` whose bytes hash to ``digest`` (hashed once,
        where the bytes were, for this and the export's checksum listing)."""
        self.entries[done.sha256] = Cached(
            done.sha256, digest, done.width, done.height, done.faces, path
        )
        self.writer.writerow(
            (done.sha256, self.key, digest, done.width, done.height, done.faces, path)
        )
        self.handle.flush()

    def close(self, keep: Callable[[str], bool]) -> None:
        """Rewrite the cache with this run's images only (``keep(sha256)``), so it never
        grows stale; streamed, as it holds a line per exported image."""
        self.handle.close()

        def lines() -> Iterator[str]:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(COLUMNS)
            for sha in sorted(self.entries):
                if keep(sha):
                    c = self.entries[sha]
                    writer.writerow(
                        (sha, self.key, c.file_sha256, c.width, c.height, c.faces, c.path)
                    )
                if buf.tell() > 1 << 16:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

        write_lines(self.file, lines())
