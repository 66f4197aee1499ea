"""Exports read by the consumers' own libraries: ``datasets``, ``webdataset``, ``pyarrow``.

No glue code between the export and the library: each test calls the one-line
load the README shows and checks what a trainer would see (splits, sizes, label
names and indices, the provenance of every sample). Nothing is fetched: the
Hugging Face libraries run offline with their caches under the test's folder.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage

from synset_builder.export.run import ExportConfig, run_export
from tests.export_data import LEAVES, TREE, build_collection

HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}


@pytest.fixture(scope="module")
def hf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``datasets``, imported offline with its home in a temporary folder (it reads
    these variables once, at import)."""
    home = tmp_path_factory.mktemp("hf-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(home))
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
        import datasets

        datasets.disable_progress_bars()
        yield datasets


@pytest.fixture(scope="module")
def mlc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``mlcroissant``, its cache (read once, at import) in a temporary folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CROISSANT_CACHE", str(tmp_path_factory.mktemp("croissant")))
        import mlcroissant

        yield mlcroissant


@pytest.fixture
def col(session, tmp_path, photos):
    return build_collection(session, tmp_path / "data", photos, per_class=10)


def export(session, col, out: Path, **kw) -> object:
    kw.setdefault("workers", 1)
    return run_export(session, col.data_dir, ExportConfig(out=out, **kw), database="test")


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def expected_names(out: Path) -> list[str]:
    classes = json.loads((out / "classes.json").read_text())
    assert [c["index"] for c in classes] == list(range(len(classes)))
    return [c["name"] for c in classes]


def test_imagefolder_loads_with_readable_label_names(session, col, tmp_path, hf) -> None:
    out = tmp_path / "out"
    export(session, col, out, formats=("imagefolder", "webdataset", "parquet"))
    names = expected_names(out)
    # The fixture's names sort differently from their wnids: folder order would be wrong.
    assert names == [TREE[w][0] for w in sorted(LEAVES)] and names != sorted(names)
    ds = hf.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "c"))
    rows = manifest(out)
    sizes = Counter(r["split"] for r in rows)
    assert {s: ds[HF_SPLITS[s]].num_rows for s in sizes} == dict(sizes)
    label = ds["train"].features["label"]
    assert isinstance(label, hf.ClassLabel) and label.names == names
    by_sha = {r["sha256"]: r for r in rows}
    for split in sizes:
        for ex in ds[HF_SPLITS[split]]:
            row = by_sha[ex["sha256"]]
            assert ex["label"] == int(row["class_index"]) and ex["wnid"] == row["wnid"]
            assert (ex["license"], ex["creator"], ex["url"]) == (
                row["license"], row["creator"], row["url"],
            )  # fmt: skip
            assert ex["image"].size == (int(row["width"]), int(row["height"]))
    # The other layouts in the folder (shards, parquet files, datasheet) add no images.
    assert sum(ds[s].num_rows for s in ds) == len(rows)


def test_parquet_loads_with_image_and_class_label_features(session, col, tmp_path, hf) -> None:
    out = tmp_path / "out"
    export(session, col, out, formats=("parquet",), shard_size=60_000)
    names = expected_names(out)
    rows = manifest(out)
    sizes = Counter(r["split"] for r in rows)
    files = sorted(p.name for p in (out / "parquet").iterdir())
    train_files = [f for f in files if f.startswith("train-")]
    assert len(train_files) > 1, files  # cut past --shard-size, named as the Hub names shards
    assert train_files[-1].endswith(f"-of-{len(train_files):05d}.parquet")
    table = pq.read_table(out / "parquet" / train_files[0])
    assert table.schema.field("image").type.names == ["bytes", "path"]
    assert json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]["label"] == {
        "names": names, "_type": "ClassLabel",
    }  # fmt: skip
    ds = hf.load_dataset("parquet", data_dir=str(out / "parquet"), cache_dir=str(tmp_path / "c"))
    assert {s: ds[HF_SPLITS[s]].num_rows for s in sizes} == dict(sizes)
    feats = ds["train"].features
    assert isinstance(feats["image"], hf.Image) and feats["label"].names == names
    by_sha = {r["sha256"]: r for r in rows}
    for split in sizes:
        for ex in ds[HF_SPLITS[split]]:
            row = by_sha[ex["sha256"]]
            assert row["split"] == split and ex["label"] == int(row["class_index"])
            assert isinstance(ex["image"], PILImage.Image)
            assert ex["image"].size == (int(row["width"]), int(row["height"]))
            assert feats["label"].int2str(ex["label"]) == TREE[row["wnid"]][0]
    # The export's checksums cover the files; verify finds nothing to complain about.
    from synset_builder.export.verify import verify_export

    assert verify_export(out).ok


def test_multi_label_parquet_holds_each_image_once_with_every_label(
    session, col, tmp_path, hf
) -> None:
    out = tmp_path / "out"
    export(session, col, out, formats=("parquet",), multi_label=True)
    rows = manifest(out)
    labels: dict[str, set[int]] = {}
    for r in rows:
        labels.setdefault(r["sha256"], set()).add(int(r["class_index"]))
    ds = hf.load_dataset("parquet", data_dir=str(out / "parquet"), cache_dir=str(tmp_path / "c"))
    seen = {ex["sha256"]: set(ex["labels"]) for s in ds for ex in ds[s]}
    assert seen == labels and any(len(v) > 1 for v in seen.values())


def test_webdataset_shards_read_with_class_index_and_provenance(session, col, tmp_path) -> None:
    import webdataset as wds

    out = tmp_path / "out"
    export(session, col, out, formats=("webdataset",), shard_size=40_000)
    rows = manifest(out)
    by_sha = {r["sha256"]: r for r in rows}
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        shards = sorted(str(p) for p in (out / "webdataset").glob(f"{split}-*.tar"))
        if split == "train":
            assert len(shards) > 1
        dataset = (
            wds.WebDataset(shards, shardshuffle=False).decode("pil").to_tuple("jpg", "cls", "json")
        )
        for image, cls, meta in dataset:
            row = by_sha[meta["sha256"]]
            assert cls == int(row["class_index"]) and meta["split"] == split
            for key in ("wnid", "license", "creator", "url", "source"):
                assert meta[key] == row[key], key
            assert image.size == (int(row["width"]), int(row["height"]))
            seen[meta["sha256"]] = split
    assert seen == {r["sha256"]: r["split"] for r in rows}


def croissant_dataset(out: Path, mlc: ModuleType, caplog: pytest.LogCaptureFixture) -> object:
    """``mlcroissant``'s view of the export, failing on any issue it reports or logs."""
    with caplog.at_level(logging.WARNING):
        ds = mlc.Dataset(jsonld=str(out / "croissant.json"))
    issues = ds.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, issues.report()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return ds


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize(
    "formats", [("imagefolder", "webdataset"), ("parquet",), ("webdataset",), ("csv",)]
)
def test_croissant_validates_and_yields_every_image_with_its_label(
    session, col, tmp_path, caplog, mlc, formats
) -> None:
    out = tmp_path / "out"
    export(session, col, out, formats=formats, contact="mailto:takedown@example.org")
    ds = croissant_dataset(out, mlc, caplog)
    names = expected_names(out)
    classes = {r["classes/index"]: text(r["classes/label"]) for r in ds.records("classes")}
    assert [classes[i] for i in range(len(names))] == names
    rows = manifest(out)
    listed = [
        (text(r["manifest/sha256"]), r["manifest/class_index"]) for r in ds.records("manifest")
    ]
    assert listed == [(r["sha256"], int(r["class_index"])) for r in rows]
    sets = {rs.name for rs in ds.metadata.record_sets}
    # Croissant 1.0 cannot pair a shard's members, and csv has no image files: those
    # exports describe their images through the manifest alone.
    with_images = {"imagefolder", "parquet"} & set(formats)
    splits = Counter(r["split"] for r in rows)
    assert sets == {"classes", "manifest", *(splits if with_images else ())}
    by_sha = {r["sha256"]: r for r in rows}
    for split, size in splits.items() if with_images else ():
        records = list(ds.records(split))
        assert len(records) == size
        for rec in records:
            row = by_sha[text(rec[f"{split}/sha256"])]
            assert row["split"] == split and rec[f"{split}/label"] == int(row["class_index"])
            assert text(rec[f"{split}/license"]) == row["license"]
            assert text(rec[f"{split}/url"]) == row["url"]
            assert rec[f"{split}/image"].size == (int(row["width"]), int(row["height"]))
    doc = json.loads((out / "croissant.json").read_text())
    assert "votes per image" in doc["rai:annotationsPerItem"]
    assert "gold" in doc["rai:dataAnnotationProtocol"]
    assert "mailto:takedown@example.org" in doc["rai:dataReleaseMaintenancePlan"]
    assert doc["rai:dataBiases"] and doc["rai:dataCollection"]
    assert "https://creativecommons.org/publicdomain/zero/1.0/" in doc["license"]


def test_verify_checks_croissant_against_the_files(session, col, tmp_path) -> None:
    from synset_builder.export.verify import verify_export

    out = tmp_path / "out"
    export(session, col, out, formats=("imagefolder", "parquet"), shard_size=60_000)
    assert verify_export(out).ok
    doc = json.loads((out / "croissant.json").read_text())
    shard = sorted((out / "parquet").glob("train-*.parquet"))[0]
    shard_rel = shard.relative_to(out).as_posix()
    # A listed file gone: the checksum list and croissant.json both say so.
    moved = shard.rename(tmp_path / "aside.parquet")
    problems = verify_export(out).problems
    assert f"croissant.json lists a missing file: {shard_rel}" in problems
    moved.rename(shard)
    # croissant.json edited: a file dropped from it, a path outside the folder added.
    doc["distribution"] = [d for d in doc["distribution"] if d.get("@id") != shard_rel]
    doc["distribution"].append({**doc["distribution"][0], "contentUrl": "../../etc/passwd"})
    doc["distribution"].append({**doc["distribution"][0], "contentUrl": "nul\x00byte"})
    doc["distribution"].append({"@type": "cr:FileSet", "@id": "odd", "includes": "a**b"})
    (out / "croissant.json").write_text(json.dumps(doc))
    problems = verify_export(out).problems
    assert "checksum mismatch: croissant.json" in problems
    assert f"croissant.json does not describe {shard_rel}" in problems
    assert "croissant.json names a file outside the export: '../../etc/passwd'" in problems
    cannot = [p for p in problems if "names a path that cannot be checked" in p]
    assert len(cannot) == 2, problems
    (out / "croissant.json").unlink()
    assert "croissant.json is missing" in verify_export(out).problems


def test_classes_sharing_a_name_get_distinct_labels(session, col, tmp_path, hf) -> None:
    from sqlalchemy import update

    from synset_builder.db.models import Synset
    from tests.export_data import BORZOI, WHIPPET

    session.execute(update(Synset).where(Synset.wnid == BORZOI).values(name="whippet"))
    out = tmp_path / "out"
    export(session, col, out)
    ds = hf.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "c"))
    names = ds["train"].features["label"].names
    assert names[:2] == [f"whippet ({BORZOI})", f"whippet ({WHIPPET})"]
    classes = json.loads((out / "classes.json").read_text())
    assert [c["label"] for c in classes] == names
