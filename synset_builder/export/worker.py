"""What an export's render worker does: render a chunk of files and write them in place.

The parent of an export used to receive every rendered file through a pipe,
hash it twice (render cache, checksum listing) and write it: a large share of
what the workers spent rendering (docs/benchmarks.md, Export). Here the worker
writes the imagefolder files itself, where the bytes already are, hashes them once;
the parent gets back the sizes and the checksum, and the bytes only when a
layout it writes needs them (webdataset shards, parquet files, the manifest-only
export's datasheet samples).

This module is what the workers import (they come from a fork server and
import it afresh): it stays as light as ``render``, with none of the export's
database, datasheet or parquet imports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import NamedTuple

from synset_builder.export.render import Rendered, RenderSpec, render


class FileJob(NamedTuple):
    """One stored file to render, and where its output goes."""

    sha256: str
    source: str
    spec: RenderSpec
    # Absolute paths the rendered file is written to (a multi-label image has one per
    # label); empty when no layout wants a file of its own.
    targets: tuple[str, ...] = ()
    # Whether the parent needs the bytes back (a layout that packs files together).
    keep_data: bool = True
    # The side of a thumbnail to make as well (a datasheet sample), or 0.
    thumb: int = 0


def write_file(target: str, data: bytes) -> None:
    """Write ``data`` under a temporary name beside ``target``, then rename it into place,
    so that an interrupted export never leaves a half file under a final name.

    The temporary name carries the process id: two workers never share one. One
    left behind by a crash is not listed by the export, so its tidy-up removes it.
    """
    folder, name = os.path.split(target)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    # 0666: the kernel applies the umask, as for any file a program creates.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:  # the first file of its class folder
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, target)


def render_file(job: FileJob) -> Rendered:
    """Render one file, write it to its targets and fill in its checksum.

    A file that cannot be rendered comes back as an error (``render`` says why);
    a target that cannot be written raises: a full disk is the export's failure,
    not the source file's.
    """
    done = render((job.sha256, job.source, job.spec), job.thumb)
    if done.error or not job.targets:
        return done
    for target in job.targets:
        write_file(target, done.data)
    digest = hashlib.sha256(done.data).hexdigest()
    data = done.data if job.keep_data else b""
    return dataclasses.replace(done, data=data, file_sha256=digest, on_disk=True)


def render_files(jobs: list[FileJob]) -> list[Rendered]:
    """``render_file`` over one task's jobs (the unit sent to a worker process)."""
    return [render_file(job) for job in jobs]
