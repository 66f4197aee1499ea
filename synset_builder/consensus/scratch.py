"""``synset consensus``'s scratch files: what the refit needs of every vote, on disk.

The replay keeps, per vote, its item, voter and answer, and per item its id,
synset and whether it was decided (:class:`.synset_pass.FitArrays`); the refit
then runs EM over those in chunks of whole items (:mod:`.chunked_refit`). Held
in memory, both grow with the project (tens of bytes a vote: hundreds of
megabytes at ILSVRC's size, gigabytes at ImageNet-21k's). Here each array is
an append-only file in a scratch folder (:func:`scratch_folder`), written a
synset at a time and read back by range, and the refit's chunks are a file
that each EM pass reads one chunk at a time, writing the chunk's posteriors
back. Reads go through ``os.preadv`` into arrays of their own, not a memory map:
a chunk's pages are then freed with the chunk, and what the process holds is
plain anonymous memory that its peak RSS measures honestly.

The folder is scratch, not data: it is removed when the recompute ends,
finished or not, and holds nothing a user made; one a killed process left is
removed by the next recompute on the same host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from synset_builder.processes import alive

if TYPE_CHECKING:
    from synset_builder.consensus.chunked_refit import Chunk


PREFIX = "synset-consensus-"


@contextmanager
def scratch_folder(parent: Path | None) -> Iterator[Path]:
    """A fresh folder under ``parent`` (None: the system's temporary folder), removed
    on the way out whatever happened, so an interrupted run leaves nothing behind.

    A killed process (SIGKILL, power loss) cannot remove its own, so the name says
    whose it is (host and process id) and every new one first removes the folders
    of processes on this host that are gone (:func:`sweep_orphans`): repeated kills
    do not pile up copies of the project's votes in the data folder."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
        sweep_orphans(parent)
    mine = f"{PREFIX}{_host()}-{os.getpid()}-"
    path = Path(tempfile.mkdtemp(prefix=mine, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sweep_orphans(parent: Path) -> list[Path]:
    """Remove the scratch folders under ``parent`` whose process, on this host, has
    ended; returns them. Another host's folders, a live process's, and folders named
    any other way are left alone (the data folder may be shared)."""
    gone = []
    host = _host()
    for entry in parent.glob(f"{PREFIX}*"):
        owner = entry.name[len(PREFIX) :].rsplit("-", 2)
        if len(owner) != 3 or owner[0] != host or not owner[1].isdigit():
            continue
        if entry.is_dir() and int(owner[1]) != os.getpid() and not alive(int(owner[1])):
            shutil.rmtree(entry, ignore_errors=True)
            gone.append(entry)
    return gone


def _host() -> str:
    # the name becomes part of a folder name: keep it to characters safe there
    return "".join(c if c.isalnum() or c in "._" else "_" for c in os.uname().nodename) or "host"


def _read_into(fd: int, out: np.ndarray, offset: int) -> np.ndarray:
    """Fill ``out`` from ``fd`` at byte ``offset`` (a short read continues; the end of
    the file before ``out`` is full is a bug, not something to pad over)."""
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise EOFError(f"scratch file ends {len(view) - done} bytes early")
        done += got
    return out


def _write(fd: int, data: np.ndarray, offset: int, path: Path | None) -> None:
    """Write ``data`` at byte ``offset``; a full disk's OSError names the file (the
    command line prints it as one line), since ``pwrite``'s names none."""
    view = memoryview(np.ascontiguousarray(data)).cast("B")
    done = 0
    try:
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise


class Column:
    """An append-only array of one type: in memory, or spilled to the file ``path``.

    Appended a synset at a time and read back by range after the replay, so a
    spilled column costs nothing in memory between the two."""

    def __init__(self, dtype: type[np.generic], path: Path | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.path = path
        self._parts: list[np.ndarray] = []  # in memory: appended blocks, joined once read
        # Open for the column's life (closed by ``close``), unbuffered: reads are preadv.
        self._file: BinaryIO | None = (
            None if path is None else open(path, "w+b", buffering=0)  # noqa: SIM115
        )
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=self.dtype)
        if self._file is not None:
            _write(self._file.fileno(), values, self._len * self.dtype.itemsize, self.path)
        else:
            self._parts.append(values)
        self._len += len(values)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Values ``start`` to ``stop``: a view in memory, a fresh array from the file."""
        stop = self._len if stop is None else min(stop, self._len)
        if self._file is None:
            if len(self._parts) != 1:
                whole = np.concatenate(self._parts) if self._parts else np.empty(0, self.dtype)
                self._parts = [whole]
            return self._parts[0][start:stop]
        out = np.empty(max(stop - start, 0), dtype=self.dtype)
        return _read_into(self._file.fileno(), out, start * self.dtype.itemsize)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


# The chunk's arrays in file order: name, type, per vote ("v"), per item ("i") or per
# item and class ("i2"). ``calibration`` and ``probas`` last: each pass writes them back.
_LAYOUT: tuple[tuple[str, type[np.generic], str], ...] = (
    ("item", np.int32, "v"),
    ("worker", np.int32, "v"),
    ("label", np.int8, "v"),
    ("gold", np.int8, "i"),
    ("group", np.int32, "i"),
    ("word", np.int8, "i"),
    ("calibration", np.float64, "i"),
    ("probas", np.float64, "i2"),
)


def _shape(kind: str, votes: int, items: int) -> tuple[int, ...]:
    return (votes,) if kind == "v" else (items,) if kind == "i" else (items, 2)


class ChunkFile:
    """The refit's chunks in one file, read back one at a time.

    Iterating yields each chunk in order as fresh arrays; when the caller asks for
    the next one, the chunk's posteriors (``probas``, which EM updates in place) and
    weights (``calibration``, which the hard-items rounds set) are written back. So
    one chunk is in memory at a time, and what stays per chunk here is three numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by close()
        self._index: list[tuple[int, int, int]] = []  # (offset, votes, items)
        self._end = 0

    def __len__(self) -> int:
        return len(self._index)

    def append(self, chunk: Chunk) -> None:
        votes, items = len(chunk.item), len(chunk.gold)
        self._index.append((self._end, votes, items))
        for name, dtype, kind in _LAYOUT:
            data = np.asarray(getattr(chunk, name), dtype=dtype).reshape(_shape(kind, votes, items))
            _write(self._file.fileno(), data, self._end, self.path)
            self._end += data.nbytes

    def __iter__(self) -> Iterator[Chunk]:
        from synset_builder.consensus.chunked_refit import Chunk

        fd = self._file.fileno()
        for offset, votes, items in self._index:
            arrays: dict[str, np.ndarray] = {}
            at = offset
            for name, dtype, kind in _LAYOUT:
                arrays[name] = _read_into(fd, np.empty(_shape(kind, votes, items), dtype), at)
                at += arrays[name].nbytes
            chunk = Chunk(**arrays)
            yield chunk
            # EM updates the posteriors in place, the hard-items rounds the weights
            at -= chunk.probas.nbytes
            _write(fd, chunk.probas, at, self.path)
            _write(fd, chunk.calibration, at - chunk.calibration.nbytes, self.path)

    def close(self) -> None:
        self._file.close()
