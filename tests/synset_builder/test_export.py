"""``run_export`` on real photos: layouts read back, levels, ambiguity, stability, privacy."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tarfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import event, update

from synset_builder.db.models import Candidate, Image, Synset, SynsetEdge
from synset_builder.export.labels import Level
from synset_builder.export.render import RenderSpec
from synset_builder.export.run import ExportConfig, run_export
from synset_builder.export.splits import SplitSpec
from synset_builder.export.verify import verify_export
from synset_builder.train.export_reader import open_export
from tests.export_data import (
    BORZOI,
    CAT,
    DOG,
    LEAVES,
    SIAMESE,
    TABBY,
    WHIPPET,
    accept,
    build_collection,
    exported_class,
)


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def export(session, col, out: Path, **kw) -> object:
    kw.setdefault("workers", 1)
    return run_export(session, col.data_dir, ExportConfig(out=out, **kw), database="test")


@pytest.fixture
def col(session, tmp_path, photos):
    return build_collection(session, tmp_path / "data", photos, per_class=10)


def test_imagefolder_holds_exactly_the_accepted_images(session, col, tmp_path) -> None:
    out = tmp_path / "out"
    report = export(session, col, out, formats=("imagefolder", "webdataset"), workers=2)
    rows = manifest(out)
    classes = json.loads((out / "classes.json").read_text())
    assert [c["wnid"] for c in classes] == sorted(LEAVES)
    assert [c["index"] for c in classes] == [0, 1, 2, 3]
    assert classes[0]["name"] and classes[0]["gloss"]
    # Every accepted image once, under its most specific class; nothing rejected.
    expected = {s: exported_class(col, s) for shas in col.accepted.values() for s in shas}
    expected[col.specific] = WHIPPET
    assert {r["sha256"]: r["wnid"] for r in rows} == expected
    assert not set(col.rejected) & {r["sha256"] for r in rows}
    assert col.ambiguous not in {r["sha256"] for r in rows}
    assert report.ambiguous == 1
    # Manifest rows == files on disk, class indices match classes.json.
    on_disk = {
        p.relative_to(out).as_posix()
        for s in ("train", "val", "test")
        for p in (out / s).rglob("*.jpg")
    }
    assert on_disk == {r["path"] for r in rows}
    index = {c["wnid"]: c["index"] for c in classes}
    for r in rows:
        assert r["path"] == f"{r['split']}/{r['wnid']}/{r['sha256']}.jpg"
        assert int(r["class_index"]) == index[r["wnid"]]
        with PILImage.open(out / r["path"]) as im:
            assert im.size == (int(r["width"]), int(r["height"]))
        assert int(r["votes_yes"]) == 2 and int(r["votes_no"]) == 1
        assert r["license"] in {"by", "by-sa", "cc0"} and r["url"].startswith("https://")
    # Near-duplicate groups (which span two classes) are never split.
    split_of = {r["sha256"]: r["split"] for r in rows}
    for members in col.groups:
        assert len({split_of[s] for s in members}) == 1
    assert len(set(split_of.values())) == 3
    # The webdataset shards hold the same samples, readable by the trainer's reader.
    shards = sorted((out / "webdataset").glob("*.tar"))
    assert {p.name.split("-")[0] for p in shards} == {"train", "val", "test"}
    label_of = {c["index"]: c["label"] for c in classes}
    samples = {}
    for shard in shards:
        with tarfile.open(shard) as tar:
            names = tar.getnames()
            assert len(names) % 3 == 0
            for n in names[::3]:
                key = n.removesuffix(".jpg")
                assert names[names.index(n) : names.index(n) + 3] == [
                    f"{key}.jpg",
                    f"{key}.cls",
                    f"{key}.json",
                ]
                meta = json.loads(tar.extractfile(f"{key}.json").read())
                cls = int(tar.extractfile(f"{key}.cls").read())
                # Numbers as JSON numbers, and the class's name (the first trial: all text).
                assert meta["class_index"] == cls and isinstance(meta["height"], int)
                assert isinstance(meta["p_yes"], float) and isinstance(meta["votes_yes"], int)
                assert meta["class_name"] == label_of[cls]
                assert tar.extractfile(f"{key}.jpg").read() == (out / meta["path"]).read_bytes()
                samples[key] = (shard.name.split("-")[0], cls)
    assert samples == {r["sha256"]: (r["split"], int(r["class_index"])) for r in rows}
    reader = open_export(out, "webdataset")
    assert sum(1 for _ in reader.format.read(out, "val")) == Counter(split_of.values())["val"]
    assert verify_export(out, session).ok
    # A later dedup run finds a near copy across splits: verify flags the leak.
    a = next(s for s, v in split_of.items() if v == "train")
    b = next(s for s, v in split_of.items() if v == "test")
    session.execute(update(Image).where(Image.sha256.in_([a, b])).values(dup_group=99_999))
    leak = verify_export(out, session)
    assert any("now grouped as near duplicates" in p and "test, train" in p for p in leak.problems)


def test_exported_files_carry_no_exif_or_gps_and_keep_their_pixels(session, col, tmp_path) -> None:
    out = tmp_path / "out"
    export(session, col, out)
    row = next(r for r in manifest(out) if r["sha256"] == col.with_gps)
    original = next(p for p in col.data_dir.rglob(f"{col.with_gps}.*"))
    with PILImage.open(original) as im:
        assert im.getexif().get_ifd(0x8825)  # the stored original has a GPS block
        pixels = np.asarray(im.convert("RGB"))
    data = (out / row["path"]).read_bytes()
    assert b"Exif" not in data and b"Secret Camera" not in data
    with PILImage.open(io.BytesIO(data)) as im:
        assert not im.getexif() and "exif" not in im.info
        assert np.array_equal(np.asarray(im.convert("RGB")), pixels)  # lossless strip


def test_resize_sets_the_shorter_side_and_survives_a_missing_file(session, col, tmp_path) -> None:
    out = tmp_path / "out"
    lost = col.accepted[BORZOI][0]
    next(col.data_dir.rglob(f"{lost}.*")).unlink()  # a stored file gone missing
    report = export(
        session, col, out, render=RenderSpec(resize=96), formats=("imagefolder", "csv"), workers=2
    )
    rows = manifest(out)
    assert list(report.unreadable) == [lost] and "FileNotFoundError" in report.unreadable[lost]
    assert lost not in {r["sha256"] for r in rows}
    for r in rows[:20]:
        with PILImage.open(out / r["path"]) as im:
            assert min(im.size) == 96 and im.size == (int(r["width"]), int(r["height"]))
            assert not im.getexif()


def test_levels_map_to_ancestors_and_class_lists(session, col, tmp_path) -> None:
    out = tmp_path / "depth"
    report = export(session, col, out, level=Level("depth", depth=1))
    rows = manifest(out)
    assert [c["wnid"] for c in json.loads((out / "classes.json").read_text())] == [DOG, CAT]
    coarse = {WHIPPET: DOG, BORZOI: DOG, TABBY: CAT, SIAMESE: CAT}
    for r in rows:
        if r["sha256"] != col.specific:
            assert r["wnid"] == coarse[exported_class(col, r["sha256"])]
    # whippet + tabby were unrelated at the leaf level; dog vs cat still are.
    assert report.ambiguous == 1
    classes_file = tmp_path / "classes.txt"
    classes_file.write_text(f"# a curator's list\n{DOG}\n{TABBY}  tabby only\n")
    from synset_builder.export.labels import parse_level

    out2 = tmp_path / "list"
    export(session, col, out2, level=parse_level(None, str(classes_file)))
    by_class = Counter(r["wnid"] for r in manifest(out2))
    assert set(by_class) == {DOG, TABBY}
    assert by_class[TABBY] == len(col.accepted[TABBY])


def test_multi_label_keeps_ambiguous_images_with_both_labels(session, col, tmp_path) -> None:
    out = tmp_path / "out"
    report = export(session, col, out, multi_label=True, formats=("imagefolder", "webdataset"))
    rows = [r for r in manifest(out) if r["sha256"] == col.ambiguous]
    assert sorted(r["wnid"] for r in rows) == sorted([WHIPPET, TABBY])
    assert len({r["split"] for r in rows}) == 1 and report.ambiguous == 0
    assert all((out / r["path"]).is_file() for r in rows)
    # One webdataset sample per image, carrying both labels.
    (shard,) = (out / "webdataset").glob(f"{rows[0]['split']}-*.tar")
    with tarfile.open(shard) as tar:
        names = tar.getnames()
        assert names.count(f"{col.ambiguous}.jpg") == 1
        meta = json.loads(tar.extractfile(f"{col.ambiguous}.json").read())
    classes = {c["wnid"]: c["index"] for c in json.loads((out / "classes.json").read_text())}
    assert meta["labels"] == [classes[WHIPPET], classes[TABBY]]
    assert meta["label_names"] == ["whippet", "tabby"]
    assert verify_export(out).ok


def test_render_workers_write_each_label_file_with_its_checksum(session, col, tmp_path) -> None:
    """Imagefolder alone: the worker processes write the files (one per label) and the
    export lists the checksums they computed, which ``verify`` checks on every file."""
    out = tmp_path / "out"
    report = export(session, col, out, multi_label=True, render=RenderSpec(resize=64), workers=2)
    rows = manifest(out)
    ambiguous = [r for r in rows if r["sha256"] == col.ambiguous]
    assert sorted(r["wnid"] for r in ambiguous) == sorted([WHIPPET, TABBY])
    first, second = ((out / r["path"]).read_bytes() for r in ambiguous)
    assert first == second
    with PILImage.open(io.BytesIO(first)) as im:
        assert min(im.size) == 64
    assert report.rendered == len({r["sha256"] for r in rows})
    assert verify_export(out).ok
    assert not list(out.rglob(".tmp-*"))
    grids = list((out / "datasheet" / "samples").glob("*.jpg"))
    assert grids
    for grid in grids:
        with PILImage.open(grid) as im:
            first_cell = np.asarray(im.convert("L").crop((8, 8, 120, 120)))
        assert first_cell.std() > 10  # a photo, not the blank background


def test_reexport_after_new_images_keeps_earlier_splits(session, col, tmp_path, photos) -> None:
    first, fresh = tmp_path / "first", tmp_path / "fresh"
    export(session, col, first, split=SplitSpec(seed=11))
    before = {r["sha256"]: r["split"] for r in manifest(first)}
    for n, photo in enumerate(photos[-12:]):
        accept(session, col, photo.read_bytes(), LEAVES[n % 4], n=n)
    # Into the same folder: every earlier image stays where it was.
    export(session, col, first, split=SplitSpec(seed=11))
    after = {r["sha256"]: r["split"] for r in manifest(first)}
    assert len(after) == len(before) + 12
    assert all(after[s] == split for s, split in before.items())
    # Into a new folder: the same hash order, so only images at a band's edge move.
    export(session, col, fresh, split=SplitSpec(seed=11))
    elsewhere = {r["sha256"]: r["split"] for r in manifest(fresh)}
    moved = [(v, elsewhere[s]) for s, v in before.items() if elsewhere[s] != v]
    assert len(moved) <= len(before) // 5, moved
    assert not {("train", "test"), ("test", "train")} & set(moved)


def test_per_class_counts_and_resume_into_the_same_folder(session, col, tmp_path, photos) -> None:
    out = tmp_path / "out"
    spec = SplitSpec(val_per_class=2, test_per_class=2, seed=5)
    export(session, col, out, split=spec)
    rows = manifest(out)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        counts[r["wnid"]][r["split"]] += 1
    for wnid in LEAVES:
        assert counts[wnid]["val"] == 2 and counts[wnid]["test"] == 2, counts
    before = {r["sha256"]: r["split"] for r in rows}
    for n, photo in enumerate(photos[-20:]):
        accept(session, col, photo.read_bytes(), LEAVES[n % 4], n=n)
    report = export(session, col, out, split=spec)
    after = {r["sha256"]: r["split"] for r in manifest(out)}
    assert all(after[s] == v for s, v in before.items())
    assert report.reused == len(before) and report.rendered == 20
    assert verify_export(out, session).ok


def test_thin_classes_dropped_big_ones_capped_licences_filtered(session, col, tmp_path) -> None:
    sizes = {w: len(col.accepted[w]) + (w == WHIPPET) for w in LEAVES}
    floor = max(sizes.values())
    report = export(session, col, tmp_path / "out", min_per_class=floor)
    kept = {w for w, n in sizes.items() if n >= floor}
    assert {r["wnid"] for r in manifest(tmp_path / "out")} == kept
    assert report.dropped_classes == {w: n for w, n in sizes.items() if w not in kept}
    out2 = tmp_path / "capped"
    export(session, col, out2, max_per_class=5, licenses=frozenset({"by", "cc0"}))
    rows = manifest(out2)
    assert set(Counter(r["wnid"] for r in rows).values()) == {5}
    assert {r["license"] for r in rows} == {"by", "cc0"}


def test_datasheet_is_written_with_its_plots(session, col, tmp_path) -> None:
    out = tmp_path / "out"
    export(session, col, out)
    md = (out / "datasheet.md").read_text()
    html = (out / "datasheet.html").read_text()
    rows = manifest(out)
    for wnid in LEAVES:
        n = sum(1 for r in rows if r["wnid"] == wnid)
        assert f"| {wnid} |" in md and f"| {n} |" in md
    assert "3/4 accepted gold items" in md and "0.750" in md
    assert "ambiguous" in md and "<table>" in html and "class_sizes.png" in html
    with PILImage.open(out / "datasheet" / "class_sizes.png") as chart:
        assert chart.format == "PNG" and chart.width >= 400
    for wnid in LEAVES:
        with PILImage.open(out / "datasheet" / "samples" / f"{wnid}.jpg") as grid:
            assert grid.format == "JPEG" and grid.width == 512
        assert f"samples/{wnid}.jpg" in html
    meta = json.loads((out / "export.json").read_text())
    assert meta["seed"] == 0 and meta["params"]["split"]["fractions"] == [0.8, 0.1, 0.1]
    assert meta["database"] == "test" and meta["checksums"]["manifest.csv"]


def test_blur_faces_blurs_a_real_face(session, col, tmp_path, photos) -> None:
    trombone = next(p for p in photos if "trombone" in p.name)
    image = accept(session, col, trombone.read_bytes(), WHIPPET)
    session.execute(
        update(Candidate).where(Candidate.image_id == image.id).values(license="cc-by-nc")
    )
    out = tmp_path / "out"
    report = export(
        session, col, out, render=RenderSpec(blur_faces=True), licenses=frozenset({"cc-by-nc"})
    )
    row = next(r for r in manifest(out) if r["sha256"] == image.sha256)
    assert int(row["faces"]) >= 1 and report.faces_blurred >= int(row["faces"])
    with PILImage.open(trombone) as im:
        before = np.asarray(im.convert("L"), dtype=float)
    with PILImage.open(out / row["path"]) as im:
        after = np.asarray(im.convert("L"), dtype=float)
    # The player's face (found by the cascade near x=150..290, y=50..190) lost its detail.
    face = (slice(60, 180), slice(160, 280))
    assert (
        np.abs(np.diff(after[face], axis=1)).mean()
        < 0.5 * np.abs(np.diff(before[face], axis=1)).mean()
    )
    # Far from the face the picture is untouched but for JPEG noise.
    assert np.abs(after[-80:, :80] - before[-80:, :80]).mean() < 4


def test_blur_faces_without_opencv_says_what_to_install(session, tmp_path, monkeypatch) -> None:
    from synset_builder.errors import InvalidInput

    monkeypatch.setitem(sys.modules, "cv2", None)  # what `import cv2` meets when not installed
    config = ExportConfig(out=tmp_path / "out", render=RenderSpec(blur_faces=True))
    with pytest.raises(InvalidInput, match=r"synset-builder\[privacy\]"):
        run_export(session, tmp_path, config, database="test")


@pytest.mark.parametrize(
    ("spelling", "family"),
    [
        ("CC BY-SA 4.0", "by-sa"),
        ("cc-by-nc-sa 2.0", "by-nc-sa"),
        ("by 4.0", "by"),
        ("cc0 1.0", "cc0"),
        ("CC0", "cc0"),
        ("pdm 1.0", "pdm"),
        ("Public domain", "public-domain"),
        (None, ""),
    ],
)
def test_licence_spellings_of_every_source_share_a_family(spelling, family) -> None:
    from synset_builder.export.select import licence_family

    assert licence_family(spelling) == family


def test_the_selection_cursor_is_planned_for_every_row(session, col, tmp_path) -> None:
    """PostgreSQL plans a cursor for its first 10% of rows by default: at ILSVRC scale
    the accepted-images stream then ran a fast-start plan at about a second per
    thousand rows. The export reads every row, so it declares the stream with
    ``cursor_tuple_fraction`` 1 and without JIT (``db.session.plan_for_every_row``)."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("cursor planning is PostgreSQL's")
    settings: list[tuple[str, str]] = []

    def at_declare(conn, cursor, statement, *_args) -> None:  # noqa: ANN001
        server_side = getattr(cursor, "name", None)  # psycopg declares it as a cursor
        if server_side and "JOIN image" in statement:
            show = cursor.connection.execute
            settings.append((show("SHOW cursor_tuple_fraction").fetchone()[0],
                             show("SHOW jit").fetchone()[0]))  # fmt: skip

    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", at_declare)
    try:
        export(session, col, tmp_path / "out")
    finally:
        event.remove(engine, "before_cursor_execute", at_declare)
    assert settings == [("1", "off")]


def test_every_class_is_in_every_split_and_imagefolder_indices_match(
    session, col, tmp_path, photos
) -> None:
    """The first user trial: classes of 5 to 8 images got no val or test image, so val/
    held fewer class folders and ImageFolder numbered its classes differently."""
    tiny = Synset(wnid="n99999999", name="tiny", lemmas=["tiny"], gloss="a tiny class")
    session.add(tiny)
    session.flush()
    session.add(SynsetEdge(parent_id=col.synsets[CAT], child_id=tiny.id))
    col.synsets[tiny.wnid] = tiny.id
    for n, photo in enumerate(photos[-2:]):
        accept(session, col, photo.read_bytes(), tiny.wnid, n=n)
    out = tmp_path / "out"
    report = export(session, col, out)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in manifest(out):
        counts[r["wnid"]][r["split"]] += 1
    for wnid in LEAVES:
        assert all(counts[wnid][s] >= 1 for s in ("train", "val", "test")), counts
    assert report.missing_from_splits == {"n99999999": ["val", "test"]}
    assert "n99999999 (2 images): no val, test" in report.warnings[0]
    assert "n99999999 (2 images): no val, test" in (out / "datasheet.md").read_text()
    # What torchvision's ImageFolder.find_classes does: sorted sub-folder names.
    wnids = [c["wnid"] for c in json.loads((out / "classes.json").read_text())]
    for split in ("train", "val", "test"):
        found = sorted(e.name for e in (out / split).iterdir() if e.is_dir())
        assert found == wnids, split
    assert not any((out / "val" / "n99999999").iterdir())
    assert verify_export(out, session).ok
    # A re-export keeps the empty folders (nothing stale to remove there).
    export(session, col, out)
    assert (out / "test" / "n99999999").is_dir()


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_every_exported_file_has_the_mode_the_umask_gives(session, col, tmp_path, umask) -> None:
    """The first user trial: metadata files were 600 (tempfile's mode) beside 644 images."""
    old = os.umask(umask)
    try:
        export(session, col, tmp_path / "out", formats=("imagefolder", "webdataset", "parquet"))
    finally:
        os.umask(old)
    modes = {
        p.relative_to(tmp_path / "out").as_posix(): p.stat().st_mode & 0o777
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    }
    assert {"manifest.csv", "croissant.json", "webdataset/train-000000.tar"} <= set(modes)
    assert any(rel.startswith("parquet/") for rel in modes)
    wrong = {rel: oct(m) for rel, m in modes.items() if m != 0o666 & ~umask}
    assert not wrong
