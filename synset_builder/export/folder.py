"""The export folder's life cycle: claim it, read the earlier export, tidy up after.

An export is written into a folder a user names, so it must never clobber
someone's files (only an empty folder or an earlier export is accepted), and a
re-export must leave nothing stale behind: a file of a taken-down image, or of an
image whose class or split changed, is removed, but only inside the folders the
export owns.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Container
from pathlib import Path

from synset_builder.errors import InvalidInput
from synset_builder.export.cache import RenderCache
from synset_builder.export.splits import SPLITS, SplitSpec

OWNED_DIRS = (*SPLITS, "webdataset", "parquet", "datasheet")


def check_out_folder(out: Path) -> list[Path]:
    """OUT is empty, new, or an earlier export: never write into someone's folder.

    The folders it had to create, deepest first, so that a run that fails before
    writing anything (nothing to export) can leave the disk as it found it.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"The export target {out} is a file, not a folder.")
    ours = (out / "export.json").is_file() or (out / RenderCache.NAME).is_file()
    if out.is_dir() and any(out.iterdir()) and not ours:
        raise InvalidInput(f"The folder {out} is not empty and holds no export; choose another.")
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"The export folder {out} cannot be created: {exc.strerror}.") from exc
    if not os.access(out, os.W_OK):
        raise InvalidInput(f"The export folder {out} is not writable.")
    return created


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created, deepest first, if still empty (``rmdir``
    never deletes a file: whatever the run did write stays, for the next run to resume)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def previous_splits(out: Path, spec: SplitSpec) -> dict[str, str]:
    """sha256 -> split of the export already in ``out``, if it used the same split rule."""
    try:
        meta = json.loads((out / "export.json").read_text(encoding="utf-8"))
        if meta.get("params", {}).get("split") != spec.as_json():
            return {}
        with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            header = next(rows)
            sha, split = header.index("sha256"), header.index("split")
            known = {s: s for s in SPLITS}  # one string per split, not one per row
            return {
                row[sha]: known[row[split]]
                for row in rows
                # a row cut short, or with a split of its own, pins nothing
                if len(row) > max(sha, split) and row[split] in known
            }
    except (OSError, ValueError, KeyError, StopIteration, csv.Error):
        return {}


def sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_stale(out: Path, keep: Container[str]) -> int:
    """Delete files of earlier runs that this export no longer lists (takedowns above all).

    Walks the tree folder by folder (deepest first, so emptied folders go too)
    rather than listing it whole: an imagefolder export holds a file per image.
    """
    removed = 0
    for top in OWNED_DIRS:
        root = out / top
        if not root.is_dir():
            continue
        for folder, dirs, names in os.walk(root, topdown=False):
            here = Path(folder)
            # Paths as strings: a Path and relative_to per file cost more than the lookup.
            prefix = here.relative_to(out).as_posix() + "/"
            for name in names:
                if prefix + name not in keep:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
            for name in dirs:
                sub = here / name
                if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
                    sub.rmdir()
        if not any(root.iterdir()):
            root.rmdir()
    return removed
