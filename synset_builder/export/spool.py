"""The export's scratch table: one row per (image, class) on disk, not in Python objects.

At ILSVRC scale an export handles most of a million entries. Held as Python
objects (an ORM pair per candidate, a dataclass per entry, a dict per manifest
row) they took gigabytes (docs/benchmarks.md); here each entry is a row of a
throw-away SQLite file (the standard library's ``sqlite3``) in a temporary
folder, so the export's memory is what one pass needs, and the sorts it needs
(the processing order, the manifest's order, the checksum listing's) are
SQLite's, which spill to disk instead of growing. The file goes away with the
export, finished or not.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from synset_builder.export.formats import MANIFEST_COLUMNS
from synset_builder.export.splits import SPLITS

BATCH = 5000


@contextmanager
def disk_errors(where: Path) -> Iterator[None]:
    """SQLite's "database or disk is full" and "disk I/O error" as the OSError they are.

    The spool's folder (TMPDIR) filling up is something the user can fix once
    told where; as an OSError naming the file, the command line reports it as
    one line. Any other SQLite error is a bug and stays what it is.
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        full = "full" in str(exc)
        if not full and "I/O error" not in str(exc):
            raise
        code = errno.ENOSPC if full else errno.EIO
        raise OSError(code, os.strerror(code), str(where)) from exc


class Entry(NamedTuple):
    """One (image, class) row of the export, with the provenance of its best candidate.

    A named tuple, so that it goes into the spool and comes back out as it is.
    """

    sha256: str
    source_path: str
    width: int
    height: int
    group: str
    wnid: str
    source: str
    url: str
    license: str
    creator: str
    votes_yes: int
    votes_no: int
    p_yes: float
    fetched_at: str | None  # "YYYY-MM-DD hh:mm:ss...", as the database writes it as text
    from_wnid: str


COLUMNS = Entry._fields
_COLS = ", ".join(f'e."{c}"' for c in COLUMNS)  # quoted: "group" is an SQL keyword

SCHEMA = [
    # img: the id of the image's first entry, the key of everything per image below.
    f"""CREATE TABLE entry (
        id INTEGER PRIMARY KEY, img INTEGER, {_COLS.replace("e.", "")},
        cap_hash REAL, shash REAL, kept INTEGER DEFAULT 1)""",
    # The split (an index into SPLITS) and every label of each kept image.
    "CREATE TABLE placed (img INTEGER PRIMARY KEY, split INTEGER, labels TEXT)",
    # The manifest's rows, in its columns (MANIFEST_COLUMNS), written out sorted at the end.
    f"CREATE TABLE manifest ({', '.join(f'c{i}' for i in range(len(MANIFEST_COLUMNS)))})",
    "CREATE TABLE file (rel TEXT PRIMARY KEY, sha256 TEXT) WITHOUT ROWID",
]


class ExportSpool:
    """A scratch SQLite database under a temporary folder; use it as a context manager.

    Entries go in image by image (``add_image``), the floor and cap take some out
    (``cap``, ``drop``), the split assignment reads the images (``items``) and
    writes where each goes (``set_splits``); then ``ordered`` hands the entries
    to the pass that writes the files, which records the manifest lines and file
    checksums here for the sorted listings at the end.
    """

    def __init__(self) -> None:
        # In the system's temporary folder (TMPDIR): a row per exported image, and the
        # manifest's rows; docs/benchmarks.md says how big that gets.
        self._dir = tempfile.TemporaryDirectory(prefix="synset-export-")
        self.path = Path(self._dir.name) / "spool.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None)
        try:
            with disk_errors(self.path):
                self.db.execute("PRAGMA journal_mode=OFF")
                self.db.execute("PRAGMA synchronous=OFF")
                self.db.execute("PRAGMA temp_store=FILE")
                self.db.execute("PRAGMA cache_size=-65536")  # 64 MB of pages, then disk
                for stmt in SCHEMA:
                    self.db.execute(stmt)
                # One transaction for the spool's life: nothing here must survive a crash.
                self.db.execute("BEGIN")
        except BaseException:
            self.close()
            raise
        self.sizes: Counter[str] = Counter()  # kept entries per class
        self._pending: list[tuple] = []
        self._rows: list[Sequence[object]] = []
        self._files: list[tuple[str, str]] = []
        self._next_id = 1
        self._indexed: set[str] = set()

    def __enter__(self) -> ExportSpool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    # -- entries ---------------------------------------------------------------------
    def add_image(self, entries: Sequence[Entry], cap_hash: float, shash: float) -> None:
        """Queue the entries of one image; ``cap_hash``: its place in its classes when
        they are capped, ``shash``: its place in the shuffled train split."""
        img = self._next_id
        for i, entry in enumerate(entries):
            self._pending.append((img + i, img, *entry, cap_hash, shash))
            self.sizes[entry.wnid] += 1
        self._next_id += len(entries)
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            marks = ", ".join("?" * (len(COLUMNS) + 4))
            self.db.executemany(f"INSERT INTO entry VALUES ({marks}, 1)", self._pending)
            self._pending.clear()

    def _index(self, name: str, columns: str) -> None:
        """Indexes are made when first needed: most exports need none."""
        if name not in self._indexed:
            self.db.execute(f"CREATE INDEX {name} ON entry ({columns})")
            self._indexed.add(name)

    def cap(self, wnid: str, keep: int) -> int:
        """Keep the first ``keep`` entries of a class in cap-hash order; how many went."""
        self.flush()
        self._index("entry_class", "wnid, cap_hash, sha256")
        cur = self.db.execute(
            "UPDATE entry SET kept = 0 WHERE id IN (SELECT id FROM entry WHERE wnid = ? "
            "AND kept ORDER BY cap_hash, sha256 LIMIT -1 OFFSET ?)",
            (wnid, keep),
        )
        self.sizes[wnid] -= cur.rowcount
        return cur.rowcount

    def drop(self, wnid: str) -> None:
        self.flush()
        self.db.execute("UPDATE entry SET kept = 0 WHERE wnid = ?", (wnid,))
        del self.sizes[wnid]

    def all_jpeg(self) -> bool:
        """Whether every stored file to export is named as a JPEG."""
        other = self.db.execute(
            "SELECT 1 FROM entry WHERE kept AND lower(source_path) NOT LIKE '%.jpg' "
            "AND lower(source_path) NOT LIKE '%.jpeg' LIMIT 1"
        )
        return other.fetchone() is None

    def items(self) -> Iterator[tuple[int, str, str, tuple[str, ...]]]:
        """(image key, sha256, group, labels) of every kept image, its labels sorted.

        Entries went in image by image, so a scan in insertion order meets the
        labels of an image together: no sort, no index.
        """
        self.flush()
        rows = self.db.execute(
            'SELECT img, sha256, "group", wnid FROM entry WHERE kept ORDER BY id'
        )
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        for img, image_rows in groupby(rows, key=itemgetter(0)):
            same = list(image_rows)
            _, sha, group, wnid = same[0]
            labels = (wnid,) if len(same) == 1 else tuple(sorted(r[3] for r in same))
            # One tuple per label set, and the image's own string as its group when it
            # has none: copies of these, per image, would be most of the memory.
            yield img, sha, sha if group == sha else group, shared.setdefault(labels, labels)

    def set_splits(self, split_of: Iterable[tuple[int, str, tuple[str, ...]]]) -> None:
        """Record (image key, split, labels) of every kept image, in ``items`` order."""
        rank = {s: i for i, s in enumerate(SPLITS)}
        rows = ((img, rank[split], ",".join(labels)) for img, split, labels in split_of)
        self.db.executemany("INSERT INTO placed VALUES (?, ?, ?)", rows)

    def ordered(
        self, *, train_of: frozenset[str] | None = None
    ) -> Iterator[tuple[Entry, str, tuple[str, ...]]]:
        """(entry, split, labels) in processing order: split; train shuffled by the seeded
        hash of the image (webdataset shards need no shuffle buffer); then class, image.

        ``train_of``: only the train entries of these classes, in the same order.
        """
        where, params = "e.kept", []
        if train_of is not None:
            where += f" AND p.split = 0 AND e.wnid IN ({', '.join('?' * len(train_of))})"
            params = sorted(train_of)
        rows = self.db.execute(
            f"SELECT {_COLS}, p.split, p.labels FROM entry e JOIN placed p "
            f"ON p.img = e.img WHERE {where} ORDER BY p.split, "
            "CASE p.split WHEN 0 THEN e.shash ELSE 0 END, e.wnid, e.sha256",
            params,
        )
        n = len(COLUMNS)
        make = Entry._make
        labels: dict[str, tuple[str, ...]] = {}
        for row in rows:
            text = row[n + 1]
            if text not in labels:
                labels[text] = tuple(text.split(","))
            yield make(row[:n]), SPLITS[row[n]], labels[text]

    def has_image(self, sha256: str) -> bool:
        """Whether this export holds the image (under any class, readable or not)."""
        self._index("entry_sha", "sha256")
        found = self.db.execute("SELECT 1 FROM entry WHERE sha256 = ? AND kept", (sha256,))
        return found.fetchone() is not None

    # -- what the export writes ------------------------------------------------------
    def add_row(self, values: Sequence[object]) -> None:
        """One manifest row, its values in ``MANIFEST_COLUMNS`` order."""
        self._rows.append(values)
        if len(self._rows) >= BATCH:
            self._flush_written()

    def add_file(self, rel: str, sha256: str) -> None:
        self._files.append((rel, sha256))
        if len(self._files) >= BATCH:
            self._flush_written()

    def _flush_written(self) -> None:
        if not (self._rows or self._files):
            return
        marks = ", ".join("?" * len(MANIFEST_COLUMNS))
        self.db.executemany(f"INSERT INTO manifest VALUES ({marks})", self._rows)
        self.db.executemany("INSERT OR REPLACE INTO file VALUES (?, ?)", self._files)
        self._rows.clear()
        self._files.clear()

    def manifest_rows(self) -> Iterator[tuple]:
        """Manifest rows by split, class and path (ties: the order they were written)."""
        self._flush_written()
        split, wnid, path = (f"c{MANIFEST_COLUMNS.index(c)}" for c in ("split", "wnid", "path"))
        rank = f"CASE {split} WHEN 'train' THEN 0 WHEN 'val' THEN 1 ELSE 2 END"
        yield from self.db.execute(f"SELECT * FROM manifest ORDER BY {rank}, {wnid}, {path}, rowid")

    def files(self) -> Iterator[tuple[str, str]]:
        """(path, sha256) of every file of the export, by path."""
        self._flush_written()
        yield from self.db.execute("SELECT rel, sha256 FROM file ORDER BY rel")

    def __contains__(self, rel: object) -> bool:
        """Whether the export wrote the file ``rel`` (so the tidy-up keeps it)."""
        self._flush_written()
        found = self.db.execute("SELECT 1 FROM file WHERE rel = ?", (rel,))
        return found.fetchone() is not None
