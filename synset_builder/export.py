"""``synset export``: accepted images -> stable splits in the layouts trainers read.

One function of (session, config): select the entries (``export_select``), place
each near-duplicate group in one split (``splits``), render each file once in
worker processes (``export_render``), hand it to every requested layout
(``export_formats``), then write ``classes.json``, ``manifest.csv``,
``checksums.sha256``, the datasheet and ``export.json`` and record the export.

Re-running into the same folder is cheap and safe: files already rendered with
the same pixel settings are reused (``.render-cache.csv``, appended as files are
written, so an interrupted export resumes), files that no longer belong (a
takedown, a class dropped) are removed, and the split of every earlier image is
kept (``splits`` explains how).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session
from tqdm import tqdm

from synset_builder import __version__
from synset_builder.datasheet import write_datasheet
from synset_builder.db.models import Export
from synset_builder.errors import InvalidInput
from synset_builder.export_cache import RenderCache
from synset_builder.export_folder import check_out_folder, previous_splits, remove_stale, sha_file
from synset_builder.export_formats import (
    DEFAULT_SHARD_SIZE,
    MANIFEST_COLUMNS,
    WRITERS,
    atomic_write,
    imagefolder_path,
)
from synset_builder.export_labels import Level
from synset_builder.export_render import Rendered, RenderSpec, render, require_face_detector
from synset_builder.export_select import Entry, select_entries
from synset_builder.splits import SPLITS, Assignment, Item, SplitSpec, assign_splits, unit_hash


@dataclass(frozen=True)
class ExportConfig:
    out: Path
    formats: tuple[str, ...] = ("imagefolder",)
    split: SplitSpec = field(default_factory=SplitSpec)
    level: Level = field(default_factory=Level)
    multi_label: bool = False
    min_per_class: int = 1
    max_per_class: int | None = None
    licenses: frozenset[str] | None = None
    render: RenderSpec = field(default_factory=RenderSpec)
    shard_size: int = DEFAULT_SHARD_SIZE
    workers: int = 0  # 0: one per CPU core
    samples_per_class: int = 8

    def params(self) -> dict[str, object]:
        return {
            "formats": list(self.formats),
            "split": self.split.as_json(),
            "level": self.level.describe(),
            "classes": sorted(self.level.classes),
            "multi_label": self.multi_label,
            "min_per_class": self.min_per_class,
            "max_per_class": self.max_per_class,
            "licenses": sorted(self.licenses) if self.licenses is not None else None,
            "render": self.render.as_json(),
            "shard_size": self.shard_size,
        }


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

    def as_json(self) -> dict[str, object]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _ordered(entries: list[Entry], split_of: dict[str, str], seed: int) -> list[Entry]:
    """Train shuffled by a seeded hash (shards need no shuffle buffer); val/test by class."""

    def key(e: Entry) -> tuple:
        split = split_of[e.sha256]
        shuffle = unit_hash(e.sha256, seed) if split == "train" else 0.0
        return (SPLITS.index(split), shuffle, e.wnid, e.sha256)

    return sorted(entries, key=key)


def _render_all(
    jobs: list[tuple[str, str, RenderSpec]], workers: int, desc: str
) -> Iterator[Rendered]:
    bar = tqdm(total=len(jobs), desc=desc, unit="img", disable=None, leave=False)
    try:
        if workers <= 1 or len(jobs) < 2:
            for job in jobs:
                yield render(job)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for done in pool.map(
                render, jobs, chunksize=max(1, min(32, len(jobs) // (workers * 8)))
            ):
                yield done
                bar.update()
    finally:
        bar.close()


def run_export(
    session: Session, data_dir: Path, config: ExportConfig, *, database: str
) -> ExportReport:
    """Write one export; safe to repeat, and to resume after an interruption."""
    unknown = [f for f in config.formats if f not in WRITERS]
    if unknown or not config.formats:
        raise InvalidInput(
            f"Unknown export format {unknown[0] if unknown else ''!r}; "
            f"choose from {', '.join(WRITERS)}."
        )
    if config.render.blur_faces:
        require_face_detector()
    out = config.out
    check_out_folder(out)
    sel = select_entries(
        session,
        data_dir,
        level=config.level,
        multi_label=config.multi_label,
        licenses=config.licenses,
        min_per_class=config.min_per_class,
        max_per_class=config.max_per_class,
        seed=config.split.seed,
    )
    if not sel.entries:
        raise InvalidInput(
            "Nothing to export: no accepted image is left in the pool "
            f"({len(sel.ambiguous)} ambiguous, {len(sel.dropped_classes)} classes too small, "
            f"{sel.taken_down} taken down); run 'synset consensus' first."
        )
    items = {e.sha256: Item(e.sha256, e.group, sel.labels[e.sha256]) for e in sel.entries}
    assignment = assign_splits(
        list(items.values()), config.split, previous_splits(out, config.split)
    )
    report = ExportReport(out=out, taken_down=sel.taken_down, moved=assignment.moved)
    classes = sorted(sel.classes)
    index = {wnid: i for i, wnid in enumerate(classes)}
    entries = _ordered(sel.entries, assignment.split, config.split.seed)
    rows, files, samples = _write_files(out, data_dir, config, entries, assignment, index, report)
    class_rows = [
        {"index": index[w], "wnid": w, "name": sel.classes[w][0], "gloss": sel.classes[w][1]}
        for w in classes
    ]
    atomic_write(
        out / "classes.json", json.dumps(class_rows, indent=1, ensure_ascii=False).encode()
    )
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: (SPLITS.index(r["split"]), r["wnid"], r["path"])))
    manifest = buf.getvalue().encode()
    atomic_write(out / "manifest.csv", manifest)
    report.classes, report.images = len(classes), len({r["sha256"] for r in rows})
    report.splits = dict(Counter(r["split"] for r in rows))
    report.ambiguous, report.dropped_classes = len(sel.ambiguous), sel.dropped_classes
    sheet = write_datasheet(
        session,
        out,
        sel,
        rows,
        class_rows,
        samples,
        report=report.as_json(),
        params=config.params(),
    )
    files.update({name: sha_file(out / name) for name in ["classes.json", "manifest.csv", *sheet]})
    listing = "".join(f"{files[p]}  {p}\n" for p in sorted(files)).encode()
    atomic_write(out / "checksums.sha256", listing)
    report.removed_files = remove_stale(out, set(files))
    meta = {
        "tool": "synset-builder",
        "version": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        "database": database,
        "schema_revision": MigrationContext.configure(session.connection()).get_current_revision(),
        "params": config.params(),
        "seed": config.split.seed,
        "counts": report.as_json(),
        "ambiguous": [{"sha256": s, "wnids": w} for s, w in sel.ambiguous],
        "checksums": {
            "manifest.csv": hashlib.sha256(manifest).hexdigest(),
            "classes.json": files["classes.json"],
            "checksums.sha256": hashlib.sha256(listing).hexdigest(),
        },
    }
    atomic_write(out / "export.json", json.dumps(meta, indent=1, ensure_ascii=False).encode())
    record = Export(
        out_path=str(out.resolve()),
        format=",".join(config.formats),
        params=config.params(),
        seed=config.split.seed,
        manifest_sha256=meta["checksums"]["manifest.csv"],  # type: ignore[index]
    )
    session.add(record)
    session.flush()
    report.export_id = record.id
    return report


def _write_files(
    out: Path,
    data_dir: Path,
    config: ExportConfig,
    entries: list[Entry],
    assignment: Assignment,
    index: dict[str, int],
    report: ExportReport,
) -> tuple[list[dict[str, str]], dict[str, str], dict[str, list[bytes]]]:
    """Render each image once, give it to every layout; the rows and file checksums."""
    writers = [WRITERS[name](out, config.shard_size) for name in config.formats]
    has_files = any(name != "csv" for name in config.formats)
    folder = "imagefolder" in config.formats
    cache = RenderCache(out, config.render) if folder else None
    remaining = Counter(e.sha256 for e in entries)
    labels_of: dict[str, list[str]] = {}
    for e in entries:
        labels_of.setdefault(e.sha256, []).append(e.wnid)
    source = {e.sha256: e.source_path for e in entries}
    reusable = cache.reusable(remaining) if cache else {}
    samples: dict[str, list[bytes]] = {}
    if has_files:
        todo = [sha for sha in dict.fromkeys(e.sha256 for e in entries) if sha not in reusable]
    else:  # manifest only: render just the datasheet's sample images
        quota = dict.fromkeys(index, config.samples_per_class)
        todo = []
        for e in entries:
            if assignment.split[e.sha256] == "train" and quota[e.wnid] > 0:
                quota[e.wnid] -= 1
                todo.append(e.sha256)
        todo = list(dict.fromkeys(todo))  # a multi-label image is rendered once
    jobs = [(sha, source[sha], config.render) for sha in todo]
    pending = set(todo)
    workers = config.workers or os.cpu_count() or 1
    light = config.render.resize is None and not config.render.blur_faces
    if light and all(Path(j[1]).suffix.lower() in (".jpg", ".jpeg") for j in jobs):
        # Stripping metadata from JPEGs is a byte copy: shipping the bytes to worker
        # processes and back costs more than it saves.
        workers = 1
    stream = _render_all(jobs, workers, "export")
    need_sample = dict.fromkeys(index, config.samples_per_class)
    rendered: dict[str, Rendered] = {}
    rows: list[dict[str, str]] = []
    files: dict[str, str] = {}
    for e in entries:
        sha, split = e.sha256, assignment.split[e.sha256]
        folder_path = imagefolder_path(split, e.wnid, sha)
        if sha not in rendered:
            done = None
            if sha in reusable and cache is not None:
                done = cache.load(reusable[sha])
                report.reused += done is not None
            elif sha in pending:
                done = next(stream)
            if done is None and has_files:  # a cached file changed under us: render again
                done = render((sha, e.source_path, config.render))
            if done is not None and done.error:
                report.unreadable[sha] = done.error
            elif done is not None:
                if sha not in reusable or cache is None:
                    report.rendered += 1
                report.faces_blurred += done.faces
                if cache is not None:
                    cache.record(done, folder_path)
                rendered[sha] = done
        done = rendered.get(sha)
        if sha in report.unreadable:
            remaining[sha] -= 1
            continue
        row = {
            "path": folder_path if folder else ("" if has_files else e.source_path),
            "split": split,
            "wnid": e.wnid,
            "class_index": str(index[e.wnid]),
            "sha256": sha,
            "width": str(done.width if done and has_files else e.width),
            "height": str(done.height if done and has_files else e.height),
            "source": e.source,
            "url": e.url,
            "license": e.license,
            "creator": e.creator,
            "votes_yes": str(e.votes_yes),
            "votes_no": str(e.votes_no),
            "p_yes": f"{e.p_yes:.4f}",
            "group": e.group,
            "faces": str(done.faces if done and has_files else 0),
        }
        if config.multi_label:
            # Every label of the image, for the webdataset sample (which holds it once).
            row["labels"] = ",".join(str(index[w]) for w in labels_of[sha])
        if done is not None and split == "train" and need_sample[e.wnid] > 0:
            need_sample[e.wnid] -= 1
            samples.setdefault(e.wnid, []).append(done.data)
        if has_files and done is not None:
            for writer in writers:
                writer.add(row, done.data, unchanged=sha in reusable)
            if folder:
                files[folder_path] = hashlib.sha256(done.data).hexdigest()
        rows.append(row)
        remaining[sha] -= 1
        if remaining[sha] == 0:
            rendered.pop(sha, None)
    for writer in writers:
        for rel in writer.finish():
            if rel not in files:
                files[rel] = sha_file(out / rel)
    if cache is not None:
        cache.close(keep=set(remaining))
    return rows, files, samples
