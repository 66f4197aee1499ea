"""Reading an export back: its classes and, per split, the labelled image bytes.

The export stage writes ``classes.json``, ``manifest.csv`` and the images in one of
these layouts (``imagefolder``: ``<split>/<wnid>/<sha256>.jpg``; ``webdataset``:
``webdataset/<split>-NNNNNN.tar`` holding ``.jpg``/``.cls``/``.json`` per sample;
``parquet``: ``parquet/<split>-NNNNN-of-MMMMM.parquet``, the JPEG bytes in the
``image`` column; ``csv``: the manifest alone, its paths naming the stored
originals).
Each layout is one small reader behind :class:`ExportFormat`, picked from
:data:`FORMATS`, so the trainer never cares which one it was given.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow.parquet as pq

from synset_builder.errors import InvalidInput, NotFound

SPLITS = ("train", "val", "test")


class ExportUnreadable(InvalidInput):
    """The folder is not an export this trainer can read."""


@dataclass(frozen=True)
class ClassInfo:
    index: int
    wnid: str
    name: str
    gloss: str = ""


@dataclass(frozen=True)
class ExportItem:
    """One labelled image of one split; ``path`` is how reports name it."""

    sha256: str
    split: str
    wnid: str
    class_index: int
    path: str


class ExportFormat(Protocol):
    name: str

    def detect(self, root: Path) -> bool: ...

    def read(self, root: Path, split: str) -> Iterator[tuple[ExportItem, bytes]]: ...

    def fingerprint(self, root: Path) -> str:
        """Changes whenever the exported images do, so caches know when to rebuild."""
        ...

    def count(self, root: Path, split: str) -> int | None:
        """How many images ``read`` will yield (None: unknown), so progress has a total."""
        ...


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


class ImageFolder:
    name = "imagefolder"

    def detect(self, root: Path) -> bool:
        return any((root / split).is_dir() for split in SPLITS)

    def read(self, root: Path, split: str) -> Iterator[tuple[ExportItem, bytes]]:
        for row in _manifest_rows(root):
            if row["split"] != split:
                continue
            if not row["path"]:
                # A parquet-only export's manifest names no files: say so, not "Is a directory".
                raise ExportUnreadable(
                    f"The manifest of {root} gives no path for the {split} image "
                    f"{row['sha256'][:12]}; train reads the {_readable()} layouts."
                )
            item = ExportItem(
                row["sha256"], split, row["wnid"], int(row["class_index"]), row["path"]
            )
            file = root / row["path"]  # an absolute path (csv exports) stays as it is
            try:
                yield item, file.read_bytes()
            except OSError as exc:
                raise ExportUnreadable(
                    f"The export lists {row['path']} but it cannot be read: {exc.strerror}."
                ) from exc

    def fingerprint(self, root: Path) -> str:
        return _digest((root / "manifest.csv").read_bytes(), (root / "classes.json").read_bytes())

    def count(self, root: Path, split: str) -> int | None:
        return _manifest_count(root, split)


class WebDataset:
    name = "webdataset"

    def detect(self, root: Path) -> bool:
        return any((root / "webdataset").glob("*.tar"))

    def _shards(self, root: Path, split: str) -> list[Path]:
        return sorted((root / "webdataset").glob(f"{split}-*.tar"))

    def read(self, root: Path, split: str) -> Iterator[tuple[ExportItem, bytes]]:
        seen = 0
        for shard in self._shards(root, split):
            try:
                for sample in self._read_shard(shard, split):
                    seen += 1
                    yield sample
            except (tarfile.TarError, EOFError) as exc:
                # A shard copied half-way: one sentence, not a tarfile traceback.
                raise ExportUnreadable(
                    f"The shard {shard} is truncated or corrupt: {exc}."
                ) from exc
        # A tar cut on a block boundary reads as a shorter, valid archive: count against
        # the manifest, which lists every image of the split once.
        if (root / "manifest.csv").is_file():
            listed = sum(1 for row in _manifest_rows(root) if row["split"] == split)
            if seen != listed:
                raise ExportUnreadable(
                    f"The {split} shards of {root} hold {seen} samples but the manifest lists "
                    f"{listed}: a shard is truncated; re-export or copy it again."
                )

    def _read_shard(self, shard: Path, split: str) -> Iterator[tuple[ExportItem, bytes]]:
        # Samples are contiguous in a shard; group members by their key (the sha256).
        key, parts = None, {}
        with tarfile.open(shard) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                stem, _, ext = member.name.rpartition("/")[2].partition(".")
                if stem != key:
                    if key is not None:
                        yield self._sample(shard, split, key, parts)
                    key, parts = stem, {}
                parts[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
        if key is not None:
            yield self._sample(shard, split, key, parts)

    def _sample(
        self, shard: Path, split: str, key: str, parts: dict[str, bytes]
    ) -> tuple[ExportItem, bytes]:
        if "jpg" not in parts or "cls" not in parts:
            raise ExportUnreadable(f"The shard {shard.name} has a sample {key} without jpg or cls.")
        meta = json.loads(parts["json"]) if "json" in parts else {}
        path = meta.get("path") or f"webdataset/{shard.name}#{key}.jpg"
        item = ExportItem(key, split, meta.get("wnid", ""), int(parts["cls"]), path)
        return item, parts["jpg"]

    def fingerprint(self, root: Path) -> str:
        shards = sorted((root / "webdataset").glob("*.tar"))
        return _digest((root / "classes.json").read_bytes(), _listing(shards))

    def count(self, root: Path, split: str) -> int | None:
        return _manifest_count(root, split) if (root / "manifest.csv").is_file() else None


class Parquet:
    """``-f parquet`` exports: one row per image, its JPEG in the ``image`` struct.

    Read a batch of rows at a time with pyarrow (the files are cut into row groups
    of about a hundred images), so memory stays at a few batches whatever the size.
    """

    name = "parquet"
    COLUMNS = ("image", "label", "wnid", "sha256")

    def detect(self, root: Path) -> bool:
        return any((root / "parquet").glob("*.parquet"))

    def _files(self, root: Path, split: str) -> list[Path]:
        return sorted((root / "parquet").glob(f"{split}-*.parquet"))

    def read(self, root: Path, split: str) -> Iterator[tuple[ExportItem, bytes]]:
        for file in self._files(root, split):
            for rows in self._batches(file):
                for row in rows:
                    sha = row["sha256"] or ""
                    path = f"parquet/{file.name}#{sha}.jpg"
                    item = ExportItem(sha, split, row["wnid"] or "", int(row["label"]), path)
                    yield item, (row["image"] or {}).get("bytes") or b""

    def _batches(self, file: Path) -> Iterator[list[dict]]:
        try:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=64, columns=self.COLUMNS):
                yield batch.to_pylist()
        except (OSError, ValueError) as exc:
            # pyarrow's errors subclass these: a cut or foreign file is one sentence.
            raise ExportUnreadable(
                f"The file {file} is not a readable image table: {str(exc).rstrip('.')}."
            ) from exc

    def fingerprint(self, root: Path) -> str:
        files = sorted((root / "parquet").glob("*.parquet"))
        return _digest((root / "classes.json").read_bytes(), _listing(files))

    def count(self, root: Path, split: str) -> int | None:
        try:
            return sum(pq.ParquetFile(f).metadata.num_rows for f in self._files(root, split))
        except (OSError, ValueError):
            return None  # read() says what is wrong with the file


class ManifestOnly(ImageFolder):
    """``--format csv`` exports: no image files, manifest paths name the stored originals."""

    name = "csv"

    def detect(self, root: Path) -> bool:
        # A manifest without paths (a parquet-only export's) lists no files to read.
        manifest = root / "manifest.csv"
        return manifest.is_file() and any(row["path"] for row in _manifest_rows(root))


# Detection tries these in order: a folder or shard layout wins over the bare manifest.
FORMATS: dict[str, ExportFormat] = {
    "imagefolder": ImageFolder(),
    "webdataset": WebDataset(),
    "parquet": Parquet(),
    "csv": ManifestOnly(),
}


def _readable() -> str:
    """The layouts train reads, for messages: "imagefolder, webdataset, parquet or csv"."""
    names = list(FORMATS)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _listing(files: list[Path]) -> bytes:
    return "\n".join(f"{p.name} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in files).encode()


def _manifest_count(root: Path, split: str) -> int:
    return sum(1 for row in _manifest_rows(root) if row["split"] == split)


MANIFEST_KEYS = {"path", "split", "wnid", "class_index", "sha256"}


def _manifest_rows(root: Path) -> list[dict[str, str]]:
    path = root / "manifest.csv"
    if not path.is_file():
        raise ExportUnreadable(f"The export {root} has no manifest.csv.")
    rows = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                # A copy cut mid-row leaves a short last row: refuse before training starts.
                if None in row or None in row.values() or not row.keys() >= MANIFEST_KEYS:
                    raise ExportUnreadable(
                        f"The manifest {path} is cut short or malformed at line {reader.line_num}."
                    )
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ExportUnreadable(f"The manifest {path} is unreadable: {exc}.") from exc
    return rows


@dataclass(frozen=True)
class Export:
    root: Path
    format: ExportFormat
    classes: tuple[ClassInfo, ...]

    @property
    def wnids(self) -> list[str]:
        return [c.wnid for c in self.classes]


def open_export(root: Path, format_name: str | None = None) -> Export:
    """Check the folder and pick its layout (the one given, else the one found)."""
    if not root.is_dir():
        raise NotFound(f"The export folder {root} does not exist.")
    classes_file = root / "classes.json"
    if not classes_file.is_file():
        raise ExportUnreadable(f"The folder {root} is not an export: it has no classes.json.")
    try:
        raw = json.loads(classes_file.read_text(encoding="utf-8"))
        classes = tuple(
            ClassInfo(
                int(c["index"]),
                str(c["wnid"]),
                str(c.get("name", c["wnid"])),
                str(c.get("gloss", "")),
            )
            for c in raw
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportUnreadable(f"The file {classes_file} is not a list of classes.") from exc
    if [c.index for c in classes] != list(range(len(classes))):
        raise ExportUnreadable(f"The classes in {classes_file} are not numbered 0..N-1.")
    if len(classes) < 2:
        raise ExportUnreadable(f"The export {root} has {len(classes)} class; training needs two.")
    if format_name is not None:
        if format_name not in FORMATS:
            raise InvalidInput(
                f"Unknown export format {format_name!r}; choose one of {', '.join(FORMATS)}."
            )
        fmt = FORMATS[format_name]
        if not fmt.detect(root):
            held = [f.name for f in FORMATS.values() if f.detect(root)]
            hint = f"; it holds {', '.join(held)}" if held else ""
            raise ExportUnreadable(f"The export {root} holds no {format_name} images{hint}.")
    else:
        found = [f for f in FORMATS.values() if f.detect(root)]
        if not found:
            raise ExportUnreadable(
                f"The export {root} holds no images in a layout train reads ({_readable()})."
            )
        fmt = found[0]
    return Export(root, fmt, classes)
