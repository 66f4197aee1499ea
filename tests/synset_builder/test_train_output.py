"""What ``synset train`` reads and says: parquet exports, its progress, errors, the
closing block that names what it wrote, and its help.

Tiny CPU runs (32 px crops, an 8-channel ResNet-18) on an export built from the
real test photos by ``tests.train_export``; stderr is captured as a log file
would hold it, so a progress bar's last state is the text after its last ``\\r``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from synset_builder.cli import main  # noqa: E402
from synset_builder.train.cache import load_split  # noqa: E402
from synset_builder.train.checkpoint import load_model  # noqa: E402
from synset_builder.train.export_reader import open_export  # noqa: E402
from tests.train_export import TINY, BuiltExport, build_export, write_parquet  # noqa: E402

pytestmark = pytest.mark.usefixtures("two_threads")


@pytest.fixture(scope="module")
def export(photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> BuiltExport:
    return build_export(photos, tmp_path_factory.mktemp("export") / "export")


@pytest.fixture(scope="module")
def parquet(export: BuiltExport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_parquet(export, tmp_path_factory.mktemp("pq") / "export")


def last_states(err: str) -> list[str]:
    """Each stderr line as a terminal or a log viewer leaves it: after its last ``\\r``."""
    return [line.rsplit("\r", 1)[-1] for line in err.split("\n") if line.strip("\r ")]


def test_a_parquet_export_gives_the_same_images_as_the_folders(
    export: BuiltExport, parquet: Path, tmp_path: Path
) -> None:
    opened = open_export(parquet)
    assert opened.format.name == "parquet"
    folders = load_split(open_export(export.root), "val", 32, tmp_path, progress=False)
    tables = load_split(opened, "val", 32, tmp_path, progress=False)
    assert len(tables) == len(folders) == 10
    by_sha = dict(zip(folders.sha256, range(len(folders)), strict=True))
    for j, sha in enumerate(tables.sha256):
        assert folders.labels[by_sha[sha]] == tables.labels[j]
        assert (folders.images[by_sha[sha]] == tables.images[j]).all()
    assert all(p.startswith("parquet/val-00000-of-00001.parquet#") for p in tables.paths)


def test_a_parquet_export_trains_and_the_run_ends_naming_what_it_wrote(
    export: BuiltExport, parquet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    capsys.readouterr()
    code = main(["train", str(parquet), "--out", str(out), "--epochs", "2", "--force-suspects",
                 *TINY])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "parquet"
    assert report["images"] == {"train": 30, "val": 10, "test": 10}

    # The closing block: model, report and suspects, each with what to do with it.
    model_line, report_line, suspects_line = captured.out.rstrip("\n").splitlines()[-3:]
    assert model_line.startswith(f"Model:    {out / 'checkpoint.pt'}")
    assert "load_model" in model_line and f"--init {out / 'checkpoint.pt'}" in model_line
    assert report_line.startswith(f"Report:   {out / 'report.json'}")
    assert "curves.png" in report_line
    assert suspects_line.startswith(f"Suspects: {out / 'suspects.csv'}")
    count = report["suspects"]["count"]
    assert count > 0 and f"{count} doubtful label(s)" in suspects_line
    assert f"synset requeue {out / 'suspects.csv'}" in suspects_line

    # The load_model the block points at gives the trained network and its classes.
    model, wnids = load_model(out / "checkpoint.pt")
    assert wnids == export.wnids
    saved = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 5)

    # Suspects name classes as well as wnids, the names beside their wnids.
    with (out / "suspects.csv").open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    header = reader.fieldnames or []
    assert header[header.index("given_wnid") + 1] == "given_name"
    assert header[header.index("predicted_wnid") + 1] == "predicted_name"
    names = {c["wnid"]: c["name"] for c in json.loads((parquet / "classes.json").read_text())}
    assert rows and all(r["given_name"] == names[r["given_wnid"]] for r in rows)
    assert all(r["predicted_name"] == names[r["predicted_wnid"]] for r in rows)
    assert all(r["path"].startswith("parquet/") for r in rows)

    # Progress ends at 100%: every bar leaves its final state, with its total.
    states = last_states(captured.err)
    for bar in ("decode train", "decode val", "decode test", "epoch 1/2", "epoch 2/2"):
        final = [s for s in states if s.startswith(f"{bar}:")]
        assert final and "100%" in final[-1], (bar, states)
    assert any(s.startswith("decode train: 100%") and "30/30" in s for s in states)


def test_a_csv_read_of_a_parquet_export_is_refused_naming_what_it_holds(
    parquet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["train", str(parquet), "--format", "csv", "--out", str(tmp_path / "o"), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err == [f"error: The export {parquet} holds no csv images; it holds parquet."]


def test_an_error_during_a_progress_bar_starts_on_its_own_line(
    parquet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "cut"
    shutil.copytree(parquet, root)
    val = root / "parquet" / "val-00000-of-00001.parquet"
    val.write_bytes(val.read_bytes()[:300])  # copied half-way
    capsys.readouterr()
    code = main(["train", str(root), "--out", str(tmp_path / "o"), "--epochs", "1", *TINY])
    err = capsys.readouterr().err
    assert code != 0
    line = f"error: The file {val} is not a readable image table: "
    assert f"\n{line}" in err, err
    assert last_states(err)[-1].startswith(line) and not err.rstrip().endswith("..")


def test_help_is_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "EXPORT_DIR" in text and "{export_dir}" not in text
    assert "helpers" not in text and "Long by" not in text
    assert "parquet" in text
