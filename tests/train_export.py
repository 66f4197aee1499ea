"""A small export built from the real test photos, in the layout the export stage writes.

The trainer's tests need an export but must not depend on the export stage's code
(written alongside), so this writes the documented layout directly: classes.json,
manifest.csv, ``<split>/<wnid>/<sha256>.jpg`` and ``webdataset/<split>-000000.tar``.
Each class is one real photograph and lightly augmented copies of it (crops,
flips, colour and rotation), so a small network can tell the classes apart. One
val image is deliberately filed under the wrong class: a labelling error the
trainer should flag.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

COLUMNS = [
    "path", "split", "wnid", "class_index", "sha256", "width", "height", "source", "url",
    "license", "creator", "votes_yes", "votes_no", "p_yes",
]  # fmt: skip
SPLIT_OF = ["train"] * 6 + ["val"] * 2 + ["test"] * 2


# The smallest run the trainer's command line takes, for tests that train end to end.
TINY = ["--image-size", "32", "--width", "8", "--batch-size", "8", "--device", "cpu",
        "--workers", "1", "--seed", "3"]  # fmt: skip


@dataclass
class BuiltExport:
    root: Path
    wnids: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    # (sha256, wnid it was filed under, wnid it really shows)
    mislabelled: tuple[str, str, str] = ("", "", "")
    images: dict[str, bytes] = field(default_factory=dict)


def _variant(photo: Image.Image, rng: random.Random, side: int) -> bytes:
    w, h = photo.size
    f = rng.uniform(0.7, 1.0)
    cw, ch = int(w * f), int(h * f)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    im = photo.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        im = ImageOps.mirror(im)
    im = im.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR)
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.8, 1.2))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.8, 1.2))
    im.thumbnail((side * 2, side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def build_export(
    photos: list[Path],
    root: Path,
    n_classes: int = 5,
    side: int = 72,
    unlearnable: bool = False,
) -> BuiltExport:
    """Write an export of ``n_classes`` x 10 images (6 train, 2 val, 2 test per class).

    ``unlearnable``: the labels say nothing about the pictures (each photograph's
    copies are dealt out over all classes in turn), so no model can beat chance.
    """
    rng = random.Random(7)
    chosen = photos[:: max(1, len(photos) // n_classes)][:n_classes]
    wnids = [p.name.split("_", 1)[0] for p in chosen]
    order = sorted(range(n_classes), key=lambda i: wnids[i])
    chosen, wnids = [chosen[i] for i in order], [wnids[i] for i in order]
    built = BuiltExport(root, wnids)
    classes = [
        {"index": i, "wnid": w, "name": p.stem.split("_", 1)[1].replace("_", " "), "gloss": ""}
        for i, (w, p) in enumerate(zip(wnids, chosen, strict=True))
    ]
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(json.dumps(classes, indent=1))
    for ci, photo_path in enumerate(chosen):
        with Image.open(photo_path) as photo:
            photo = photo.convert("RGB")
            for k, split in enumerate(SPLIT_OF):
                data = _variant(photo, rng, side)
                label = k % n_classes if unlearnable else ci
                if ci == 0 and split == "val" and not built.mislabelled[0] and not unlearnable:
                    label = 1  # the planted labelling error
                sha = hashlib.sha256(data).hexdigest()
                if label != ci:
                    built.mislabelled = (sha, wnids[label], wnids[ci])
                rel = f"{split}/{wnids[label]}/{sha}.jpg"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
                with Image.open(io.BytesIO(data)) as im:
                    w, h = im.size
                built.images[sha] = data
                built.rows.append({
                    "path": rel, "split": split, "wnid": wnids[label], "class_index": str(label),
                    "sha256": sha, "width": str(w), "height": str(h), "source": "test",
                    "url": f"http://127.0.0.1/{photo_path.name}?v={k}", "license": "cc0",
                    "creator": "tests", "votes_yes": "3", "votes_no": "0", "p_yes": "0.99",
                })  # fmt: skip
    with (root / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(built.rows)
    _write_shards(built)
    return built


def _write_shards(built: BuiltExport) -> None:
    shard_dir = built.root / "webdataset"
    shard_dir.mkdir(exist_ok=True)
    for split in ("train", "val", "test"):
        with tarfile.open(shard_dir / f"{split}-000000.tar", "w") as tar:
            for row in built.rows:
                if row["split"] != split:
                    continue
                members = {
                    "jpg": built.images[row["sha256"]],
                    "cls": row["class_index"].encode(),
                    "json": json.dumps(row).encode(),
                }
                for ext, payload in members.items():
                    info = tarfile.TarInfo(f"{row['sha256']}.{ext}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))


def write_parquet(built: BuiltExport, root: Path) -> Path:
    """The same images as a parquet-only export (``synset export -f parquet``'s layout).

    One file per split, ``parquet/<split>-00000-of-00001.parquet``, each row an image
    as the ``Image`` feature stores it (``{bytes, path}``) with its label; the
    manifest lists every image with an empty ``path``, as that export writes it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "parquet").mkdir(parents=True)
    (root / "classes.json").write_bytes((built.root / "classes.json").read_bytes())
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    schema = pa.schema([("image", image), ("label", pa.int64()), ("wnid", pa.string()),
                        ("sha256", pa.string())])  # fmt: skip
    for split in ("train", "val", "test"):
        rows = [
            {"image": {"bytes": built.images[r["sha256"]], "path": f"{r['sha256']}.jpg"},
             "label": int(r["class_index"]), "wnid": r["wnid"], "sha256": r["sha256"]}
            for r in built.rows if r["split"] == split
        ]  # fmt: skip
        pq.write_table(
            pa.Table.from_pylist(rows, schema=schema),
            root / "parquet" / f"{split}-00000-of-00001.parquet",
            row_group_size=4,
        )
    with (root / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(r | {"path": ""} for r in built.rows)
    return root
