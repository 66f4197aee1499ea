"""The export's one pass over its entries: render each file once, hand it to every layout.

Entries arrive from the spool in processing order (``ExportSpool.ordered``);
each image is rendered once (in worker processes, a bounded number of files
ahead), given to every requested layout, and its manifest row, file checksum
and datasheet counts are written down as it goes. The rows go to the spool,
not into a list; what stays in memory per image is the imagefolder render
cache's index line (``cache``), and a multi-label image's file until its
last label.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import multiprocessing.forkserver
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from PIL import Image as PILImage

from synset_builder.export.cache import RenderCache
from synset_builder.export.datasheet import SheetStats
from synset_builder.export.datasheet_figures import THUMB
from synset_builder.export.folder import sha_file
from synset_builder.export.formats import MANIFEST_COLUMNS, WRITERS, imagefolder_path
from synset_builder.export.hf import LabelSpace
from synset_builder.export.render import Rendered, RenderSpec, render
from synset_builder.export.spool import Entry, ExportSpool
from synset_builder.export.worker import FileJob, render_file, render_files
from synset_builder.progress import phase

# Files a worker renders per task, and tasks in flight per worker: enough to keep
# the workers busy, few enough that finished files never pile up in memory.
CHUNK = 16
AHEAD = 4


@dataclass
class ExportReport:
    out: Path
    classes: int = 0
    images: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    ambiguous: int = 0
    dropped_classes: dict[str, int] = field(default_factory=dict)
    taken_down: int = 0
    faces_blurred: int = 0
    rendered: int = 0
    reused: int = 0
    moved: int = 0
    removed_files: int = 0
    # sha256 -> why its stored file could not be exported (left out, listed in export.json)
    unreadable: dict[str, str] = field(default_factory=dict)
    export_id: int | None = None
    # wnid -> the splits meant to hold some of every class that have none of it.
    missing_from_splits: dict[str, list[str]] = field(default_factory=dict)
    # One line each, for stderr: what a user should know before training on the export.
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Plan:
    """What the pass needs to know besides the entries."""

    out: Path
    formats: tuple[str, ...]
    render: RenderSpec
    shard_size: int
    workers: int
    multi_label: bool
    samples_per_class: int
    sample_classes: frozenset[str]
    labels: LabelSpace = LabelSpace()


def _context() -> multiprocessing.context.BaseContext:
    """Workers come from a fork server, not a fork of this process: a process that has
    run OpenCV (a render with one worker, face blurring) holds its thread pool, and a
    child forked from it waits forever on that pool's lock at its first resize.

    The fork server imports what every worker needs (numpy and OpenCV are most of a
    worker's start-up) once, instead of each worker importing it; importing OpenCV
    starts no threads, running it does, and the fork server never runs it.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "cv2", "synset_builder.export.worker"])
    return context


def start_workers_early(spec: RenderSpec, workers: int) -> None:
    """Start the render workers' fork server now, when the export will use it, so that
    its start-up (a fresh interpreter importing OpenCV) runs while the entries are
    selected instead of delaying the first render."""
    decodes = spec.resize is not None or spec.blur_faces
    if decodes and (workers or os.cpu_count() or 1) > 1:
        _context()
        multiprocessing.forkserver.ensure_running()


def render_stream(jobs: Iterable[FileJob], workers: int) -> Iterator[Rendered]:
    """``render_file`` over ``jobs`` in order, in ``workers`` processes, a bounded window
    ahead (``Executor.map`` would queue every job, and keep every result it got ahead)."""
    if workers <= 1:
        yield from map(render_file, jobs)
        return
    it = iter(jobs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
        window: deque[Future[list[Rendered]]] = deque()
        while True:
            while len(window) < workers * AHEAD and (chunk := list(islice(it, CHUNK))):
                window.append(pool.submit(render_files, chunk))
            if not window:
                return
            yield from window.popleft().result()


class _Peekable:
    """The render stream, taken from only by the entry its next result belongs to."""

    def __init__(self, stream: Iterator[Rendered]) -> None:
        self.stream = stream
        self.head: Rendered | None = None

    def take(self, sha256: str) -> Rendered | None:
        if self.head is None:
            self.head = next(self.stream, None)
        if self.head is not None and self.head.sha256 == sha256:
            done, self.head = self.head, None
            return done
        return None


def _jobs(spool: ExportSpool, plan: Plan, cache: RenderCache | None) -> Iterator[FileJob]:
    """The files to render, in the order the pass will want them.

    With image files: every image not reusable from the cache, once; the worker
    writes its imagefolder files (one per label) and keeps the bytes only for
    the layouts that pack files. Manifest only (csv): just the datasheet's
    sample images. The pass takes a result only when it is for the image at
    hand, so this plan going wrong can cost a render, never a wrong file.
    """
    has_files = any(name != "csv" for name in plan.formats)
    folder = str(plan.out) if "imagefolder" in plan.formats else None
    keep_data = not has_files or any(n not in ("csv", "imagefolder") for n in plan.formats)
    quota = dict.fromkeys(plan.sample_classes, plan.samples_per_class)
    queued: set[str] = set()  # multi-label images only: the others come once
    entries = spool.ordered(train_of=None if has_files else plan.sample_classes)
    for entry, split, labels in entries:
        sha = entry.sha256
        # The pass takes the first train images of each shown class as samples.
        sample = split == "train" and quota.get(entry.wnid, 0) > 0
        if sample:
            quota[entry.wnid] -= 1
        wanted = (cache is None or cache.hit(sha) is None) if has_files else sample
        if len(labels) > 1:
            if sha in queued:
                wanted = False
            elif wanted:
                queued.add(sha)
        if wanted:
            targets = () if folder is None else _targets(folder, split, labels, sha)
            thumb = THUMB if sample else 0
            yield FileJob(sha, entry.source_path, plan.render, targets, keep_data, thumb)


def _targets(folder: str, split: str, labels: tuple[str, ...], sha: str) -> tuple[str, ...]:
    return tuple(os.path.join(folder, imagefolder_path(split, w, sha)) for w in labels)


def _sample(done: Rendered, out: Path, rel: str) -> bytes | PILImage.Image:
    """A datasheet sample: the thumbnail the worker made, else the file's bytes (a worker
    that wrote the file kept no copy of them unless a layout needed it)."""
    if done.thumb:
        return PILImage.frombytes("RGB", (THUMB, THUMB), done.thumb)
    return done.data or (out / rel).read_bytes()


def _fetch(
    stream: _Peekable, cache: RenderCache | None, e: Entry, plan: Plan
) -> tuple[Rendered | None, bool]:
    """(the rendered file, whether it was reused) for an entry met for the first time:
    from the workers, else the render cache, else rendered here (with image files)."""
    sha = e.sha256
    done, reused = stream.take(sha), False
    if done is None and cache is not None and (hit := cache.hit(sha)) is not None:
        done = cache.load(hit)
        reused = done is not None
    has_files = any(name != "csv" for name in plan.formats)
    if done is None and has_files:  # not planned, or a cached file changed
        done = render((sha, e.source_path, plan.render))
    folder = "imagefolder" in plan.formats
    if done is not None and folder and not done.file_sha256 and not done.error:
        done = dataclasses.replace(done, file_sha256=hashlib.sha256(done.data).hexdigest())
    return done, reused


def _manifest_values(
    e: Entry, split: str, class_index: int, path: str, pixels: Rendered | None
) -> list[object]:
    """The entry's manifest row, in ``MANIFEST_COLUMNS`` order; sizes and faces of the
    exported file when there is one, else of the stored file."""
    return [
        path,
        split,
        e.wnid,
        class_index,
        e.sha256,
        pixels.width if pixels else e.width,
        pixels.height if pixels else e.height,
        e.source,
        e.url,
        e.license,
        e.creator,
        e.votes_yes,
        e.votes_no,
        f"{e.p_yes:.4f}",
        e.group,
        pixels.faces if pixels else 0,
    ]


def write_files(
    spool: ExportSpool, plan: Plan, index: dict[str, int], report: ExportReport
) -> SheetStats:
    """Render, write and record every entry; ``report`` gets the counts.

    One loop over the entries, long for this codebase: the state it
    carries (the render stream, multi-label files held until their last label,
    the samples still wanted) lives only for the pass.
    """
    writers = [WRITERS[name](plan.out, plan.shard_size, plan.labels) for name in plan.formats]
    has_files = any(name != "csv" for name in plan.formats)
    folder = "imagefolder" in plan.formats
    cache = RenderCache(plan.out, plan.render) if folder else None
    workers = plan.workers or os.cpu_count() or 1
    if plan.render.resize is None and not plan.render.blur_faces and spool.all_jpeg():
        # Stripping metadata from JPEGs is a byte copy: shipping the bytes to worker
        # processes and back costs more than it saves.
        workers = 1
    stream = _Peekable(render_stream(_jobs(spool, plan, cache), workers))
    need_sample = dict.fromkeys(plan.sample_classes, plan.samples_per_class)
    stats = SheetStats()
    held: dict[str, tuple[Rendered, bool, int]] = {}  # multi-label: until its last label
    unreadable = report.unreadable
    n = 0
    # On a terminal a bar, in a log one line at the end (synset_builder/progress.py).
    with phase(sum(spool.sizes.values()), "export", "img") as bar:
        for n, (e, split, labels) in enumerate(spool.ordered(), 1):
            if n % 1000 == 0:
                bar.update(1000)
            sha = e.sha256
            if sha in unreadable:
                continue
            folder_path = imagefolder_path(split, e.wnid, sha) if folder else ""
            if sha in held:
                done, reused, left = held[sha]
                if left > 1:
                    held[sha] = (done, reused, left - 1)
                else:
                    del held[sha]
            else:
                done, reused = _fetch(stream, cache, e, plan)
                if done is not None and done.error:
                    unreadable[sha] = done.error
                    continue
                if done is not None:
                    report.reused += reused
                    report.rendered += not reused
                    report.faces_blurred += done.faces
                    if cache is not None:
                        cache.record(done, folder_path, done.file_sha256)
                    if len(labels) > 1:
                        held[sha] = (done, reused, len(labels) - 1)
            if done is not None and split == "train" and need_sample.get(e.wnid, 0) > 0:
                need_sample[e.wnid] -= 1
                stats.samples[e.wnid].append(_sample(done, plan.out, folder_path))
            pixels = done if has_files else None
            path = folder_path or ("" if has_files else e.source_path)
            values = _manifest_values(e, split, index[e.wnid], path, pixels)
            if pixels is not None:
                # The layouts get the row as text (the webdataset .json member holds it).
                row = dict(zip(MANIFEST_COLUMNS, map(str, values), strict=True))
                if plan.multi_label:
                    # Every label of the image, for the webdataset sample (which holds it once).
                    row["labels"] = ",".join(str(index[w]) for w in labels)
                for writer in writers:
                    writer.add(row, pixels.data, unchanged=reused or pixels.on_disk)
                values[0] = row["path"]  # the webdataset writer names the shard member
                if folder:
                    spool.add_file(folder_path, pixels.file_sha256)
            spool.add_row(values)
            stats.add(e, split, first=e.wnid == labels[0])
        bar.update(n - bar.n)
    for writer in writers:
        for rel in writer.finish():
            if rel not in spool:
                spool.add_file(rel, sha_file(plan.out / rel))
    if cache is not None:
        cache.close(keep=spool.has_image)
    return stats
