"""A pre-decoded uint8 cache of each split, built once per export and image size.

Why a cache rather than decoding JPEGs every epoch: a ResNet on a modern GPU eats
thousands of images a second, far more than a few CPU cores decode. Decoding once
(at reduced size: JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale directly) into
a square ``uint8`` array of side ``round(image_size / 0.875)`` leaves only a memory
copy per batch; crops, flips and normalisation then run on the device
(:mod:`synset_builder.train.augment`). The cost is disk: 3*S*S bytes an image
(about 200 kB at 224 px), fine for the tens of thousands of images a built set
holds. The arrays are ``.npy`` files opened memory-mapped, written under a
temporary name and renamed, so an interrupted build is simply redone.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from synset_builder.progress import phase
from synset_builder.train.export_reader import Export, ExportItem, ExportUnreadable

CROP_RATIO = 0.875


def cache_side(image_size: int) -> int:
    return round(image_size / CROP_RATIO)


@dataclass
class SplitCache:
    """The decoded images of one split, with their labels and names, in export order."""

    split: str
    images: np.ndarray  # (N, S, S, 3) uint8, memory-mapped
    labels: np.ndarray  # (N,) int64
    sha256: list[str]
    paths: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> SplitCache:
        """Some of the images, read into memory (held-out folds)."""
        return SplitCache(
            self.split,
            np.ascontiguousarray(self.images[idx]),
            self.labels[idx],
            [self.sha256[i] for i in idx],
            [self.paths[i] for i in idx],
        )


def decode_square(data: bytes, side: int) -> np.ndarray:
    """Decode at the smallest JPEG scale still >= side, shorter side to ``side``, centre crop."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (side, side))
        im = im.convert("RGB")
        w, h = im.size
        scale = side / min(w, h)
        nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
        im = im.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
        left, top = (nw - side) // 2, (nh - side) // 2
        return np.asarray(im.crop((left, top, left + side, top + side)), dtype=np.uint8)


def _chunks(it: Iterable[tuple[ExportItem, bytes]], n: int) -> Iterator[list]:
    it = iter(it)
    while chunk := list(islice(it, n)):
        yield chunk


def load_split(
    export: Export,
    split: str,
    image_size: int,
    cache_dir: Path,
    *,
    workers: int = 4,
    progress: bool = True,
) -> SplitCache:
    """The cache of one split: read it when present for this export, else build it."""
    side = cache_side(image_size)
    stem = cache_dir / f"{export.format.fingerprint(export.root)[:16]}-{split}-{side}"
    index_file, array_file = stem.with_suffix(".json"), stem.with_suffix(".npy")
    if not (index_file.is_file() and array_file.is_file()):
        _build(export, split, side, index_file, array_file, workers, progress)
    index = json.loads(index_file.read_text())
    images = np.load(array_file, mmap_mode="r")
    return SplitCache(
        split,
        images,
        np.asarray(index["labels"], dtype=np.int64),
        index["sha256"],
        index["paths"],
        index["skipped"],
    )


def _build(
    export: Export,
    split: str,
    side: int,
    index_file: Path,
    array_file: Path,
    workers: int,
    progress: bool,
) -> None:
    cache_dir = index_file.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    n_classes = len(export.classes)
    wnids = export.wnids
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    sha: list[str] = []
    paths: list[str] = []
    skipped: list[dict[str, str]] = []

    def decode(pair: tuple[ExportItem, bytes]) -> np.ndarray | str:
        try:
            return decode_square(pair[1], side)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            return f"cannot decode: {exc}"

    total = export.format.count(export.root, split)
    shown = progress and (total is None or total > 0)  # None: the format cannot tell
    # Pillow releases the GIL while decoding, so threads use every core without pickling.
    with (
        phase(total, f"decode {split}", "img", enabled=shown) as bar,
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
    ):
        for chunk in _chunks(export.format.read(export.root, split), 256):
            for (item, _), out in zip(chunk, pool.map(decode, chunk), strict=True):
                if 0 <= item.class_index < n_classes and item.wnid not in (
                    "",
                    wnids[item.class_index],
                ):
                    raise ExportUnreadable(
                        f"The export files {item.path} as {item.wnid} but gives it the class "
                        f"index of {wnids[item.class_index]}; re-export it."
                    )
                if isinstance(out, str) or not 0 <= item.class_index < n_classes:
                    reason = out if isinstance(out, str) else "class index out of range"
                    skipped.append({"path": item.path, "sha256": item.sha256, "reason": reason})
                    continue
                arrays.append(out)
                labels.append(item.class_index)
                sha.append(item.sha256)
                paths.append(item.path)
            bar.update(len(chunk))
    stacked = np.stack(arrays) if arrays else np.zeros((0, side, side, 3), dtype=np.uint8)
    tmp = array_file.with_name(array_file.name + f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, stacked)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, array_file)
    index = {"labels": labels, "sha256": sha, "paths": paths, "skipped": skipped}
    tmp_index = index_file.with_name(index_file.name + f".{os.getpid()}.tmp")
    tmp_index.write_text(json.dumps(index))
    os.replace(tmp_index, index_file)
