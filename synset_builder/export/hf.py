"""Parquet files laid out the way Hugging Face ``datasets`` reads them, with no glue.

Two layouts share this module:

* ``imagefolder``'s ``<split>/metadata.parquet``: ``datasets`` takes the label of
  an image from its folder's name and numbers the folders in sorted order, which
  would give wnids, not readable names. A metadata file overrides that, and a
  Parquet one carries its own feature types in the schema (the ``huggingface``
  key ``datasets`` itself writes), so ``label`` comes back as a ``ClassLabel``
  whose names are the readable class names and whose indices are those of
  ``classes.json``; the folders stay ``<wnid>`` for torchvision, the trainer and
  ``synset verify``. A CSV or JSON Lines metadata file cannot say ``ClassLabel``.
* ``-f parquet``: ``parquet/<split>-NNNNN-of-MMMMM.parquet``, each row an image
  in the ``Image`` feature's storage (``{bytes, path}``) and its label; files are
  cut past ``--shard-size`` and named as the Hub names shards.

pyarrow writes the files (hand-written Parquet would be a second, worse pyarrow).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from synset_builder.export.atomic import publish, temp_beside

# Rows per row group: small, as the Hub viewer and random access want for images.
IMAGE_ROWS_PER_GROUP = 100
META_ROWS_PER_GROUP = 10_000
TEXT_COLUMNS = ("wnid", "sha256", "license", "creator", "url", "source")
INT_COLUMNS = ("width", "height")


def label_names(classes: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """Readable, unique label names for ``(wnid, name)`` pairs in class-index order.

    WordNet reuses names (ILSVRC has two *crane* and two *maillot* classes) and a
    ``ClassLabel`` maps names to indices, so a shared or empty name takes its wnid.
    """
    seen: dict[str, int] = {}
    for _, name in classes:
        key = " ".join(name.split())
        seen[key] = seen.get(key, 0) + 1
    out = []
    for wnid, name in classes:
        key = " ".join(name.split())
        out.append(key if key and seen[key] == 1 else f"{key} ({wnid})".lstrip())
    return tuple(out)


@dataclass(frozen=True)
class LabelSpace:
    """What every layout needs to know about the classes: names by index."""

    names: tuple[str, ...] = ()
    multi_label: bool = False


def _features(labels: LabelSpace, *, image: bool) -> dict[str, object]:
    """The ``datasets.Features`` of a table, as ``Features.to_dict`` spells them."""
    label = {"names": list(labels.names), "_type": "ClassLabel"}
    first: dict[str, object] = (
        {"image": {"_type": "Image"}} if image else {"file_name": _value("string")}
    )
    feats: dict[str, object] = {**first, "label": label}
    if image and labels.multi_label:
        feats["labels"] = {"feature": label, "_type": "List"}
    feats.update({c: _value("string") for c in TEXT_COLUMNS})
    feats.update({c: _value("int32") for c in INT_COLUMNS})
    return feats


def _value(dtype: str) -> dict[str, str]:
    return {"dtype": dtype, "_type": "Value"}


def schema(labels: LabelSpace, *, image: bool) -> pa.Schema:
    first = (
        pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
        if image
        else pa.field("file_name", pa.string())
    )
    fields = [first, pa.field("label", pa.int64())]
    if image and labels.multi_label:
        fields.append(pa.field("labels", pa.list_(pa.int64())))
    fields += [pa.field(c, pa.string()) for c in TEXT_COLUMNS]
    fields += [pa.field(c, pa.int32()) for c in INT_COLUMNS]
    info = {"info": {"features": _features(labels, image=image)}}
    return pa.schema(fields, metadata={"huggingface": json.dumps(info, ensure_ascii=False)})


def table_row(row: dict[str, str]) -> dict[str, object]:
    """The columns every table takes from a manifest row (given as text)."""
    out: dict[str, object] = {"label": int(row["class_index"])}
    out.update({c: row.get(c, "") for c in TEXT_COLUMNS})
    out.update({c: int(row[c] or 0) for c in INT_COLUMNS})
    return out


class _Part:
    """One Parquet file being written under a temporary name, rows buffered by group."""

    def __init__(self, folder: Path, table_schema: pa.Schema, rows_per_group: int) -> None:
        self.tmp = temp_beside(folder, ".parquet")
        self.schema = table_schema
        self.rows_per_group = rows_per_group
        self.writer = pq.ParquetWriter(self.tmp, table_schema)  # snappy: JPEGs do not shrink
        self.buffer: list[dict[str, object]] = []
        self.size = 0

    def add(self, values: dict[str, object], size: int) -> None:
        self.buffer.append(values)
        self.size += size
        if len(self.buffer) >= self.rows_per_group:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.writer.write_table(pa.Table.from_pylist(self.buffer, schema=self.schema))
            self.buffer = []

    def close(self, final: Path) -> None:
        self.flush()
        self.writer.close()
        publish(self.tmp, final)


class ParquetSplits:
    """Per split, Parquet files of about ``shard_size`` bytes (``None``: one file).

    A file is written under a temporary name in its final folder (an owned one, so
    an interrupted run's leftovers are removed by the next) and renamed at the end,
    when the split's count of files, part of the Hub's shard names, is known.
    """

    def __init__(
        self, folder_of: Callable[[str], Path], table_schema: pa.Schema, *,
        rows_per_group: int, shard_size: int | None,
    ) -> None:  # fmt: skip
        self.folder_of = folder_of
        self.schema = table_schema
        self.rows_per_group = rows_per_group
        self.shard_size = shard_size
        self.open: dict[str, _Part] = {}
        self.done: dict[str, list[Path]] = {}

    def add(self, split: str, values: dict[str, object], size: int = 0) -> None:
        part = self.open.get(split)
        limit = self.shard_size
        if part is not None and limit and part.size and part.size + size > limit:
            self._close(split)
            part = None
        if part is None:
            part = _Part(self.folder_of(split), self.schema, self.rows_per_group)
            self.open[split] = part
        part.add(values, size)

    def _close(self, split: str) -> None:
        part = self.open.pop(split)
        final = part.tmp.with_suffix(".done")
        part.close(final)
        self.done.setdefault(split, []).append(final)

    def finish(self, name: str) -> list[Path]:
        """Close every file and give it its final name; ``name`` is formatted with
        ``split``, ``n`` and ``of`` (the shard's number and the split's count)."""
        for split in list(self.open):
            self._close(split)
        files = []
        for split, parts in sorted(self.done.items()):
            for n, part in enumerate(parts):
                final = self.folder_of(split) / name.format(split=split, n=n, of=len(parts))
                os.replace(part, final)
                files.append(final)
        return files
