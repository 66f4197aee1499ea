"""What ``synset train`` tells a trainer: chance, top-k, the confusion matrix, the curves.

Runs are tiny (32 px crops, an 8-channel ResNet-18, CPU) on exports built from the
real test photos (tests/train_export.py); one of them has labels that say nothing
about the pictures, the case where a run must not send suspects to the crowd.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

from synset_builder.cli import main  # noqa: E402
from synset_builder.train import plots  # noqa: E402
from tests.train_export import TINY, BuiltExport, build_export  # noqa: E402

pytestmark = pytest.mark.usefixtures("two_threads")


@pytest.fixture(scope="module")
def noise(photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> BuiltExport:
    """Two classes whose labels are dealt out regardless of the picture."""
    root = tmp_path_factory.mktemp("noise") / "export"
    return build_export(photos, root, n_classes=2, unlearnable=True)


def run(export: BuiltExport, out: Path, capsys, *extra: str) -> tuple[dict, str, str, list]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    code = main(["train", str(export.root), "--out", str(out), *TINY, *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with (out / "suspects.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return json.loads((out / "report.json").read_text()), captured.out, captured.err, rows


def test_a_set_it_cannot_learn_warns_and_writes_no_suspects(
    noise: BuiltExport, tmp_path: Path, capsys
) -> None:
    report, out, err, rows = run(noise, tmp_path / "run", capsys, "--epochs", "2", "--requeue")
    verdict = report["learnable"]
    assert verdict["split"] == "val+test" and verdict["images"] == 8
    assert verdict["chance"] == 0.5 and verdict["learned"] is False
    assert verdict["p_value"] >= verdict["alpha"]
    assert "not clearly above chance 0.500" in err and "commonest class" in err
    assert "No suspects written" in err and "Nothing requeued" in err
    assert rows == [] and report["suspects"] == {**report["suspects"], "count": 0, "withheld": True}
    assert "not clearly above chance" in report["warning"]
    assert out.splitlines()[-1].startswith("Suspects: ") and "none written" in out

    # The trainer can still ask for them.
    forced, _, err, rows = run(noise, tmp_path / "forced", capsys, "--epochs", "2",
                               "--force-suspects")  # fmt: skip
    assert "not clearly above chance" in err and "written anyway" in err
    wrong = verdict["images"] - verdict["correct"]
    assert len(rows) == forced["suspects"]["count"] == wrong > 0
    assert forced["suspects"]["withheld"] is False


def test_a_run_that_learned_writes_suspects_without_a_warning(
    photos: list[Path], tmp_path: Path, capsys
) -> None:
    export = build_export(photos, tmp_path / "export")
    report, out, err, rows = run(export, tmp_path / "run", capsys, "--epochs", "12")
    verdict = report["learnable"]
    assert verdict["learned"] is True and verdict["chance"] == 0.25
    assert verdict["top1"] > verdict["chance"] and verdict["p_value"] < verdict["alpha"]
    assert "warning" not in report and "Warning" not in err
    assert rows and report["suspects"]["withheld"] is False
    # Five classes: top-5 is always 1, so neither the report nor the screen shows it.
    assert "top5" not in report and "top-5" not in out and "top-1" in out


def test_top5_is_shown_with_more_than_five_classes(
    photos: list[Path], tmp_path: Path, capsys
) -> None:
    export = build_export(photos, tmp_path / "export", n_classes=6)
    report, out, _, _ = run(export, tmp_path / "run", capsys, "--epochs", "1",
                            "--force-suspects")  # fmt: skip
    assert set(report["top5"]) == {"train", "val", "test"}
    assert all(report["top1"][s] <= report["top5"][s] for s in report["top5"])
    assert out.count("top-5") == 3


def test_confusion_png_is_a_row_normalised_matrix_with_class_names(
    noise: BuiltExport, tmp_path: Path, capsys
) -> None:
    report, _, _, _ = run(noise, tmp_path / "run", capsys, "--epochs", "1")
    shown = report["confusion"]
    names = [c["name"] for c in json.loads((noise.root / "classes.json").read_text())]
    assert shown["classes"] == shown["columns"] == names
    assert all(abs(sum(row) - 1.0) < 1e-3 for row in shown["rows"])
    assert (tmp_path / "run" / "confused_pairs.png").is_file()

    fig, _ = plots.confusion_figure(np.array([[3, 1], [0, 4]]), ["ant", "bee"], "val")
    ax = fig.axes[0]
    assert ax.images[0].get_array().tolist() == [[0.75, 0.25], [0.0, 1.0]]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ant", "bee"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ant", "bee"]
    assert ax.get_ylabel() == "true class" and ax.get_xlabel() == "predicted class"


def test_many_classes_show_the_most_confused_and_the_rest_as_other() -> None:
    rng = np.random.default_rng(0)
    n = 30
    matrix = np.diag(rng.integers(20, 40, n))
    # Classes 3, 17 and 25 are confused with each other; the rest never are.
    for a, b in [(3, 17), (17, 25), (25, 3), (3, 25)]:
        matrix[a, b] = 5
    names = [f"class {i}" for i in range(n)]
    fig, shown = plots.confusion_figure(matrix, names, "val", top=8)
    assert len(shown["classes"]) == 8
    assert {"class 3", "class 17", "class 25"} <= set(shown["classes"])
    assert shown["columns"] == [*shown["classes"], "other classes"]
    cells = fig.axes[0].images[0].get_array()
    assert cells.shape == (8, 9)
    assert np.allclose(np.asarray(cells).sum(1), 1.0)


def test_curves_tick_whole_epochs() -> None:
    history = [
        {"epoch": e, "train_loss": 1.0 / e, "train_top1": 0.3 * e, "val_loss": 1.2 / e,
         "val_top1": 0.25 * e}
        for e in (1, 2, 3)
    ]  # fmt: skip
    fig = plots.curves_figure(history)
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
