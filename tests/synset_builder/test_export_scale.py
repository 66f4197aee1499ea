"""An export of 150 classes: past the size where the datasheet lists every class.

The datasheet's bar chart used to give each class a row 2 px high past 80
classes, and Pillow refused the bars (``y1 < y0``): the export stopped with
``manifest.csv`` written and no ``export.json``. These tests export 150 classes
of uneven size on both backends and read back what a user gets.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import tarfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synset_builder.db.models import (
    Annotator,
    Candidate,
    Consensus,
    Export,
    Image,
    Synset,
    SynsetEdge,
    Vote,
)
from synset_builder.db.session import make_engine, session_scope
from synset_builder.export.datasheet_figures import SHOWN
from synset_builder.export.run import ExportConfig, run_export
from synset_builder.export.verify import verify_export
from tests.export_data import build_collection
from tests.photo_variants import tiny
from tests.synset_builder.test_cli_errors import SYNSET, _can_mount_tmpfs

N_CLASSES = 150


@dataclass
class Classes:
    data_dir: Path
    sizes: dict[str, int]  # wnid -> accepted images


@pytest.fixture
def classes(session: Session, tmp_path: Path, photos: list[Path]) -> Classes:
    """150 leaf synsets under one parent, class i with 1 + (i * 7) % 11 accepted images.

    Image rows point at eight small real JPEGs (the content is not what is
    tested); each row has its own sha256, so each is its own exported image.
    """
    data_dir = tmp_path / "data"
    (data_dir / "files").mkdir(parents=True)
    for k in range(8):
        (data_dir / "files" / f"{k}.jpg").write_bytes(tiny(photos[k], side=48))
    parent = Synset(wnid="n00000001", name="thing", lemmas=["thing"], gloss="a thing")
    session.add(parent)
    voters = [Annotator(username=f"scale-voter-{k}") for k in range(3)]
    session.add_all(voters)
    session.flush()
    sizes: dict[str, int] = {}
    n = 0
    for i in range(N_CLASSES):
        wnid = f"n{10_000_000 + i:08d}"
        synset = Synset(wnid=wnid, name=f"class {i}", lemmas=[f"class {i}"], gloss="", target=True)
        session.add(synset)
        session.flush()
        session.add(SynsetEdge(parent_id=parent.id, child_id=synset.id))
        sizes[wnid] = 1 + (i * 7) % 11
        for _ in range(sizes[wnid]):
            n += 1
            image = Image(
                sha256=hashlib.sha256(f"scale image {n}".encode()).hexdigest(),
                path=f"files/{n % 8}.jpg",
                width=48,
                height=36,
                format="JPEG",
                bytes=1000,
            )
            session.add(image)
            session.flush()
            cand = Candidate(
                image_id=image.id,
                synset_id=synset.id,
                source=("openverse", "wikimedia")[n % 2],
                url=f"https://example.org/{n}.jpg",
                license=("by", "cc0", "by-sa")[n % 3],
                creator=f"creator {n % 5}",
                fetched_at=datetime(2026, 1 + n % 12, 15, 12, tzinfo=UTC),
            )
            session.add(cand)
            session.flush()
            for voter in voters:
                session.add(Vote(candidate_id=cand.id, annotator_id=voter.id, answer=True))
            session.add(
                Consensus(candidate_id=cand.id, p_yes=0.97, decision="accepted", method="dynamic")
            )
    session.flush()
    return Classes(data_dir=data_dir, sizes=sizes)


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def listed_wnids(markdown: str) -> set[str]:
    """The class wnids the datasheet's text names."""
    return set(re.findall(r"n1\d{7}", markdown))


def test_csv_export_of_150_classes_writes_its_datasheet_and_export_json(
    session: Session, classes: Classes, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    report = run_export(
        session,
        classes.data_dir,
        ExportConfig(out=out, formats=("csv",), workers=1),
        database="test",
    )
    total = sum(classes.sizes.values())
    assert (report.classes, report.images) == (N_CLASSES, total)
    meta = json.loads((out / "export.json").read_text())
    assert meta["counts"]["classes"] == N_CLASSES and meta["counts"]["images"] == total
    assert sum(meta["counts"]["splits"].values()) == total
    assert len(json.loads((out / "classes.json").read_text())) == N_CLASSES
    rows = manifest(out)
    assert Counter(r["wnid"] for r in rows) == classes.sizes
    # Paths of a csv export point at the stored originals.
    assert all(Path(r["path"]).is_file() for r in rows)

    md = (out / "datasheet.md").read_text()
    assert f"{N_CLASSES} classes: the {SHOWN} largest and the {SHOWN} smallest" in md
    order = sorted(classes.sizes, key=lambda w: (-classes.sizes[w], w))
    shown = set(order[:SHOWN] + order[-SHOWN:])
    # No other class named one by one (the warning about classes too small for every
    # split names at most ten, on its own line).
    table = "\n".join(line for line in md.splitlines() if not line.startswith("Warning:"))
    assert listed_wnids(table) == shown
    assert f"| ... | ({N_CLASSES - 2 * SHOWN} classes) |" in md
    histogram = md.split("| images per class | classes |\n|---|---|\n")[1].split("\n\n")[0]
    buckets = [line.strip("| ").split(" | ") for line in histogram.splitlines()]
    assert sum(int(n) for _, n in buckets) == N_CLASSES
    assert buckets[0][0] == "1" and buckets[-1][0] == str(max(classes.sizes.values()))
    with PILImage.open(out / "datasheet" / "class_sizes.png") as chart:
        assert chart.format == "PNG" and chart.height < 1000
    with PILImage.open(out / "datasheet" / "class_size_histogram.png") as hist:
        assert hist.format == "PNG"
    grids = {p.stem for p in (out / "datasheet" / "samples").glob("*.jpg")}
    assert grids and grids <= shown
    assert "Crawled between 2026-01-15 and 2026-12-15." in md
    months = md.split("| month | images |\n|---|---|\n")[1].split("\n\n")[0].splitlines()
    assert [m.split(" | ")[0] for m in months] == [f"| 2026-{k:02d}" for k in range(1, 13)]
    assert sum(int(m.strip("| ").split(" | ")[1]) for m in months) == total
    html = (out / "datasheet.html").read_text()
    assert "class_size_histogram.png" in html and "class_sizes.png" in html

    listing = (out / "checksums.sha256").read_text()
    for name in ("datasheet.md", "datasheet.html", "datasheet/class_size_histogram.png"):
        assert f"  {name}\n" in listing
    assert verify_export(out, session).ok


def test_150_classes_as_imagefolder_and_webdataset_verify(
    session: Session, classes: Classes, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = ExportConfig(out=out, formats=("imagefolder", "webdataset"), workers=2)
    report = run_export(session, classes.data_dir, config, database="test")
    total = sum(classes.sizes.values())
    assert report.images == total and report.rendered == total and not report.unreadable
    rows = manifest(out)
    files = [p for split in ("train", "val", "test") for p in (out / split).rglob("*.jpg")]
    on_disk = {p.relative_to(out).as_posix() for p in files}
    assert on_disk == {r["path"] for r in rows}
    in_shards = set()
    for shard in (out / "webdataset").glob("*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    meta = json.load(io.BytesIO(tar.extractfile(member).read()))
                    in_shards.add(meta["sha256"])
    assert in_shards == {r["sha256"] for r in rows}
    assert verify_export(out, session).ok
    # Again into the same folder: every file comes from the render cache.
    again = run_export(session, classes.data_dir, config, database="test")
    assert again.reused == total and again.rendered == 0 and again.removed_files == 0
    assert verify_export(out, session).ok


def test_capped_classes_keep_the_split_fractions(
    session: Session, classes: Classes, tmp_path: Path
) -> None:
    """--max-per-class used to keep each class's lowest split hashes: all test images."""
    out = tmp_path / "out"
    config = ExportConfig(out=out, formats=("csv",), max_per_class=10, workers=1)
    report = run_export(session, classes.data_dir, config, database="test")
    rows = manifest(out)
    assert Counter(r["wnid"] for r in rows) == {w: min(10, n) for w, n in classes.sizes.items()}
    per_class: dict[str, Counter[str]] = {}
    for r in rows:
        per_class.setdefault(r["wnid"], Counter())[r["split"]] += 1
    capped = [w for w, n in classes.sizes.items() if n >= 10]
    assert capped and all(per_class[w] == {"train": 8, "val": 1, "test": 1} for w in capped)
    assert report.splits["train"] == sum(c["train"] for c in per_class.values())


@pytest.mark.slow  # builds a collection and exports it in a subprocess, on both backends
def test_a_full_scratch_folder_is_one_line_and_no_export(
    settings, photos: list[Path], tmp_path: Path
) -> None:
    """The export's spool lives in TMPDIR: that disk being full is one line naming the
    spool, as a full export folder is, not SQLite's traceback.

    (The spool writes to disk when it is created and when its 64 MB page cache
    spills; a tmpfs of one page fails the first, which goes through the same
    translation as the second.)
    """
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        build_collection(session, settings.data_dir, photos, per_class=5)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    if reason := _can_mount_tmpfs(scratch):
        pytest.skip(f"no private tmpfs: {reason}")
    out = tmp_path / "out"
    script = (
        f"mount -t tmpfs -o size=4k synset-full {shlex.quote(str(scratch))} && "
        f"{shlex.quote(SYNSET)} export {shlex.quote(str(out))} -f csv --workers 1"
    )
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": settings.database_url,
        "SYNSET_DATA_DIR": str(settings.data_dir),
        "TMPDIR": str(scratch),
    }
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {scratch}/synset-export-"), line
    assert line.endswith("spool.sqlite: No space left on device."), line
    assert not (out / "export.json").exists()
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Export)) == 0
    engine.dispose()
