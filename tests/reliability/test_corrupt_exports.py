"""Fault: a truncated export handed to ``verify`` and ``train``.

Manifest cut mid-row, a shard cut mid-member, classes.json cut, an image cut: one
clear message, a non-zero exit, no traceback, and ``train`` leaves no half-written
run folder. These read only the export folder, so they run on SQLite alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from synset_builder.config import Settings
from synset_builder.db.session import make_engine, session_scope
from tests.export_data import build_collection
from tests.reliability.test_corrupt_inputs import _one_sentence


@pytest.fixture
def backend() -> str:
    """The export is built once from a database; what is checked is only files."""
    return "sqlite"


@pytest.fixture
def export(cli: Callable, settings: Settings, photos: list[Path], tmp_path: Path) -> Path:
    """A real export (imagefolder + webdataset) written by ``synset export``."""
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        build_collection(session, settings.data_dir, photos, per_class=4)
    engine.dispose()
    done = cli("export", "out", "-f", "imagefolder", "-f", "webdataset", "--resize", "48")
    assert done.code == 0, done.err
    return tmp_path / "out"


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


TRUNCATIONS: dict[str, Callable[[Path], None]] = {
    "manifest cut mid-row": lambda root: _truncate(root / "manifest.csv", 0.6),
    "shard cut mid-member": lambda root: _truncate(
        sorted((root / "webdataset").glob("train-*.tar"))[0]
    ),
    "classes.json cut": lambda root: _truncate(root / "classes.json"),
    "image cut": lambda root: _truncate(sorted((root / "train").rglob("*.jpg"))[0]),
}


@pytest.mark.parametrize("case", sorted(TRUNCATIONS))
def test_verify_reports_a_truncated_export(case: str, export: Path, cli: Callable) -> None:
    assert cli("verify", str(export)).code == 0
    TRUNCATIONS[case](export)
    done = cli("verify", str(export))
    assert done.code == 1, done.err
    assert "Traceback" not in done.err
    assert "failed verification" in _one_sentence(done.err)
    assert "OK" not in done.out


TRAIN = ["--epochs", "1", "--image-size", "32", "--width", "8", "--batch-size", "8",
         "--device", "cpu", "--workers", "1", "--seed", "3"]  # fmt: skip


@pytest.mark.parametrize(
    "case", ["manifest cut mid-row", "classes.json cut", "shard cut mid-member"]
)
def test_train_refuses_a_truncated_export_without_half_writing(
    case: str, export: Path, cli: Callable, tmp_path: Path
) -> None:
    TRUNCATIONS[case](export)
    run = tmp_path / "run"
    fmt = ["--format", "webdataset"] if "shard" in case else []
    done = cli("train", str(export), "--out", str(run), *fmt, *TRAIN)
    assert done.code != 0, done.out
    assert str(export) in _one_sentence(done.err)
    # The split cache is written atomically: complete files only, and nothing but it.
    written = [p.relative_to(run) for p in run.rglob("*") if p.is_file()] if run.exists() else []
    assert all(p.parts[0] == "cache" and ".tmp" not in p.name for p in written), written
