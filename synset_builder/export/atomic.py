"""Files written under a temporary name and renamed into place, with ordinary modes.

An interrupted export must never leave a half file under a final name, so every
file is written beside its target and renamed once complete. ``tempfile`` makes
those files mode 600 (private, as a temporary file should be); renamed as they
were, an export's metadata was unreadable to the group and others that could
read its images. :func:`publish` gives a finished file the mode ``open()`` would
have: 0666 less the umask. Every writer of the export renames through it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    """The process's umask now (reading it means setting it: put back at once). Read per
    file, not cached: a few dozen files per export go through here, images do not."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain ``open()`` gives a new file (0644 under the usual umask 022)."""
    return 0o666 & ~_umask()


def publish(tmp: str | Path, target: str | Path) -> None:
    """Give a finished temporary file an ordinary mode and rename it onto ``target``."""
    os.chmod(tmp, file_mode())
    os.replace(tmp, target)


def temp_beside(folder: Path, suffix: str = "") -> Path:
    """A new empty temporary file in ``folder`` (created if missing), for :func:`publish`."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)


@contextmanager
def atomic_open(target: Path) -> Iterator[BinaryIO]:
    """A file written under a temporary name and renamed onto ``target`` once complete,
    so a big file (the manifest) can be streamed without ever being half there."""
    tmp = temp_beside(target.parent)
    try:
        with tmp.open("wb") as fh:
            yield fh
        publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(target: Path, data: bytes) -> None:
    with atomic_open(target) as fh:
        fh.write(data)
