"""Export layouts: one small writer per format, picked from :data:`WRITERS`.

The layouts are the contract with trainers (and with ``synset_builder.train``):

* ``imagefolder``: ``<split>/<wnid>/<sha256>.jpg``, what torchvision's ImageFolder reads,
  plus ``<split>/metadata.parquet`` so that Hugging Face ``datasets`` labels each file
  with its readable class name at its ``classes.json`` index (``hf.py`` says why);
* ``webdataset``: ``webdataset/<split>-000000.tar`` shards of about ``shard_size``
  bytes, each sample three members ``<sha256>.jpg``, ``.cls`` (class index as text)
  and ``.json`` (its manifest row, numbers as numbers, plus ``class_name``), samples
  contiguous as WebDataset expects;
* ``parquet``: ``parquet/<split>-NNNNN-of-MMMMM.parquet``, images embedded as the
  Hugging Face ``Image`` feature stores them, cut past ``shard_size``;
* ``csv``: no image files, the manifest only (paths point at the stored originals).

Files are written under a temporary name and renamed, so an interrupted export
never leaves a half file under a final name; tar members get a fixed owner and
time, so the same export twice gives byte-identical shards.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Protocol

from synset_builder.export.atomic import atomic_open, atomic_write, publish, temp_beside
from synset_builder.export.hf import (
    IMAGE_ROWS_PER_GROUP,
    META_ROWS_PER_GROUP,
    LabelSpace,
    ParquetSplits,
    schema,
    table_row,
)

MANIFEST_COLUMNS = (
    "path", "split", "wnid", "class_index", "sha256", "width", "height", "source", "url",
    "license", "creator", "votes_yes", "votes_no", "p_yes",
    # Beyond the fixed columns: the near-duplicate group (for `synset verify`) and
    # how many faces were blurred in this file.
    "group", "faces",
)  # fmt: skip
# Manifest columns that are whole numbers (the webdataset .json writes them as such).
SIDECAR_INTS = ("class_index", "width", "height", "votes_yes", "votes_no", "faces")
TAR_MTIME = 946_684_800  # 2000-01-01: fixed, so shards are reproducible
DEFAULT_SHARD_SIZE = 1_000_000_000


def write_csv(target: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Stream CSV rows atomically into ``target``; the sha256 of what was written.

    Rows are formatted a few thousand at a time by ``csv.writer.writerows``: a
    call (and a buffer) per row was the manifest's main cost at ILSVRC scale.
    """
    digest = hashlib.sha256()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    it = iter(rows)
    with atomic_open(target) as fh:
        while True:
            chunk = list(islice(it, 4096))
            writer.writerows(chunk)
            data = buf.getvalue().encode()
            digest.update(data)
            fh.write(data)
            buf.seek(0)
            buf.truncate()
            if not chunk:
                return digest.hexdigest()


def write_lines(target: Path, lines: Iterable[str]) -> str:
    """Stream text lines atomically into ``target``; the sha256 of what was written."""
    digest = hashlib.sha256()
    with atomic_open(target) as fh:
        it = iter(lines)
        while chunk := "".join(islice(it, 4096)):  # a few hundred KB at a time
            data = chunk.encode()
            digest.update(data)
            fh.write(data)
    return digest.hexdigest()


class FormatWriter(Protocol):
    """Receives every exported file once per label; returns the files it made."""

    name: str

    def __init__(self, out: Path, shard_size: int, labels: LabelSpace) -> None: ...

    def add(self, row: dict[str, str], data: bytes, *, unchanged: bool) -> None: ...

    def finish(self) -> list[str]:
        """Close everything; the paths (relative to OUT) of the files it wrote whose
        checksums the export has not recorded as they were added."""
        ...


def imagefolder_path(split: str, wnid: str, sha256: str) -> str:
    return f"{split}/{wnid}/{sha256}.jpg"


class ImageFolderWriter:
    name = "imagefolder"

    def __init__(self, out: Path, shard_size: int, labels: LabelSpace) -> None:
        self.out = out
        self.meta = ParquetSplits(
            lambda split: out / split, schema(labels, image=False),
            rows_per_group=META_ROWS_PER_GROUP, shard_size=None,
        )  # fmt: skip

    def add(self, row: dict[str, str], data: bytes, *, unchanged: bool) -> None:
        rel = imagefolder_path(row["split"], row["wnid"], row["sha256"])
        # Unchanged: a render worker wrote these bytes there (and may have kept no copy),
        # or the file was reused from the previous run of this export.
        if not unchanged or (data and not (self.out / rel).is_file()):
            atomic_write(self.out / rel, data)
        self.meta.add(row["split"], {"file_name": rel.partition("/")[2], **table_row(row)})

    def finish(self) -> list[str]:
        # The export records each image with the checksum of the bytes it handed over,
        # as it goes: only the metadata files are left to list.
        return [p.relative_to(self.out).as_posix() for p in self.meta.finish("metadata.parquet")]


class WebDatasetWriter:
    name = "webdataset"

    def __init__(self, out: Path, shard_size: int, labels: LabelSpace) -> None:
        self.folder = out / "webdataset"
        self.shard_size = shard_size
        self.names = labels.names
        self.open: dict[str, tuple[tarfile.TarFile, Path, Path, int]] = {}
        self.count: dict[str, int] = {}
        self.files: list[str] = []
        self.written: set[str] = set()

    def _shard(self, split: str, need: int) -> tuple[tarfile.TarFile, str]:
        if split in self.open:
            tar, tmp, final, size = self.open[split]
            if size + need <= self.shard_size or size == 0:
                return tar, final.name
            self._close(split)
        n = self.count.get(split, 0)
        self.count[split] = n + 1
        final = self.folder / f"{split}-{n:06d}.tar"
        tmp = temp_beside(self.folder)
        # Closed in _close, when the shard is full or the export ends.
        tar = tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        self.open[split] = (tar, tmp, final, 0)
        return tar, final.name

    def add(self, row: dict[str, str], data: bytes, *, unchanged: bool) -> None:
        if row["sha256"] in self.written:
            return  # a multi-label image: one sample, its labels listed in the .json
        self.written.add(row["sha256"])
        split = row["split"]
        tar, shard = self._shard(split, len(data) + 2048)
        if not row.get("path"):
            row["path"] = f"webdataset/{shard}#{row['sha256']}.jpg"
        meta = json.dumps(self._sidecar(row), ensure_ascii=False, sort_keys=True).encode()
        for ext, payload in (("jpg", data), ("cls", row["class_index"].encode()), ("json", meta)):
            info = tarfile.TarInfo(f"{row['sha256']}.{ext}")
            info.size, info.mtime, info.mode = len(payload), TAR_MTIME, 0o644
            tar.addfile(info, io.BytesIO(payload))
        t, tmp, final, size = self.open[split]
        self.open[split] = (t, tmp, final, size + len(data) + len(meta) + 3 * 512)

    def _sidecar(self, row: dict[str, str]) -> dict[str, object]:
        """The sample's ``.json``: its manifest row with numbers as JSON numbers (the
        layouts get the row as text) and the class's readable name beside its index."""
        meta: dict[str, object] = dict(row)
        for key in SIDECAR_INTS:
            meta[key] = int(row[key])
        meta["p_yes"] = float(row["p_yes"])
        meta["class_name"] = self.names[int(row["class_index"])] if self.names else row["wnid"]
        if "labels" in row:  # multi-label: every class index, and their names
            indices = [int(x) for x in row["labels"].split(",")]
            meta["labels"] = indices
            meta["label_names"] = [self.names[i] for i in indices] if self.names else []
        return meta

    def _close(self, split: str) -> None:
        tar, tmp, final, _ = self.open.pop(split)
        tar.close()
        publish(tmp, final)
        self.files.append(f"webdataset/{final.name}")

    def finish(self) -> list[str]:
        for split in list(self.open):
            self._close(split)
        return self.files


class ParquetWriter:
    """One row per image (a multi-label image once, all its labels in ``labels``)."""

    name = "parquet"

    def __init__(self, out: Path, shard_size: int, labels: LabelSpace) -> None:
        self.out = out
        self.multi_label = labels.multi_label
        self.parts = ParquetSplits(
            lambda split: out / "parquet", schema(labels, image=True),
            rows_per_group=IMAGE_ROWS_PER_GROUP, shard_size=shard_size,
        )  # fmt: skip
        self.written: set[str] = set()

    def add(self, row: dict[str, str], data: bytes, *, unchanged: bool) -> None:
        if row["sha256"] in self.written:
            return
        self.written.add(row["sha256"])
        values = {"image": {"bytes": data, "path": f"{row['sha256']}.jpg"}, **table_row(row)}
        if self.multi_label:
            values["labels"] = [int(x) for x in row.get("labels", row["class_index"]).split(",")]
        self.parts.add(row["split"], values, len(data))

    def finish(self) -> list[str]:
        files = self.parts.finish("{split}-{n:05d}-of-{of:05d}.parquet")
        return [p.relative_to(self.out).as_posix() for p in files]


class CsvWriter:
    """The manifest is always written; this format just asks for no image files."""

    name = "csv"

    def __init__(self, out: Path, shard_size: int, labels: LabelSpace) -> None:
        pass

    def add(self, row: dict[str, str], data: bytes, *, unchanged: bool) -> None:
        return None

    def finish(self) -> list[str]:
        return []


WRITERS: dict[str, type[FormatWriter]] = {
    "imagefolder": ImageFolderWriter,
    "webdataset": WebDatasetWriter,
    "parquet": ParquetWriter,
    "csv": CsvWriter,
}


def parse_size(text: str) -> int:
    """``1GB``, ``500MB``, ``64k`` or plain bytes."""
    from synset_builder.errors import InvalidInput

    units = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "")
    try:
        value = int(float(number) * units[unit])
    except ValueError as exc:
        raise InvalidInput(f"--shard-size {text!r} is not a size like 1GB or 500MB.") from exc
    if value < 1024:
        raise InvalidInput(f"--shard-size {text!r} is below 1 KB.")
    return value
