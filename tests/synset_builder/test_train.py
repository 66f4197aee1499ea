"""The baseline trainer: reports, determinism, resume, suspects back to the annotators.

Everything runs on the CPU at toy scale (32 px crops, a ResNet-18 of width 8) on a
small export built from the real test photos by ``tests.train_export``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from sqlalchemy import select  # noqa: E402

from synset_builder.cli import main  # noqa: E402
from synset_builder.config import Settings  # noqa: E402
from synset_builder.db.models import Candidate, Consensus, Image, Requeue, Synset  # noqa: E402
from synset_builder.db.session import make_engine, session_scope  # noqa: E402
from synset_builder.errors import InvalidInput  # noqa: E402
from synset_builder.train.cache import load_split  # noqa: E402
from synset_builder.train.config import TrainConfig  # noqa: E402
from synset_builder.train.export_reader import open_export  # noqa: E402
from synset_builder.train.loop import train  # noqa: E402
from synset_builder.train.resnet import build_model  # noqa: E402
from tests.train_export import TINY, BuiltExport, build_export  # noqa: E402

pytestmark = pytest.mark.usefixtures("two_threads")

PNG = b"\x89PNG\r\n\x1a\n"


def tiny(**over: object) -> TrainConfig:
    base = {"epochs": 2, "device": "cpu", "image_size": 32, "width": 8, "batch_size": 8,
            "workers": 1, "seed": 3, "progress": False}  # fmt: skip
    return TrainConfig(**(base | over))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def export(photos: list[Path], tmp_path_factory: pytest.TempPathFactory) -> BuiltExport:
    return build_export(photos, tmp_path_factory.mktemp("export") / "export")


@pytest.fixture(scope="module")
def run_dir(export: BuiltExport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One two-epoch run through the command line, shared by the report tests.

    Two epochs of this tiny net do not beat chance, so the trainer would withhold
    its suspects (test_train_report.py); --force-suspects keeps them to test them.
    """
    out = tmp_path_factory.mktemp("run") / "run"
    code = main(
        ["train", str(export.root), "--out", str(out), "--epochs", "2", "--force-suspects", *TINY]
    )
    assert code == 0
    return out


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_two_epoch_run_writes_every_report(run_dir: Path, export: BuiltExport) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    assert report["arch"] == "resnet18" and report["device"] == "cpu"
    assert report["epochs"] == 2 and [h["epoch"] for h in report["history"]] == [1, 2]
    assert report["images"] == {"train": 30, "val": 10, "test": 10}
    for split in ("train", "val", "test"):
        assert 0.0 <= report["top1"][split] <= 1.0
        assert set(report["per_class"][split]) == set(export.wnids)
    # Five classes: top-5 would always be 1, so it is not reported.
    assert "top5" not in report
    assert report["images_per_second"] > 0
    for png in ("curves.png", "confusion.png", "confused_pairs.png"):
        assert (run_dir / png).read_bytes().startswith(PNG)
    with (run_dir / "suspects.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "an untrained-ish model on five classes disagrees with some val/test labels"
    assert {"path", "sha256", "given_wnid", "predicted_wnid", "p_given"} <= set(rows[0])
    names = {c["wnid"]: c["name"] for c in json.loads((export.root / "classes.json").read_text())}
    assert all(r["given_name"] == names[r["given_wnid"]] for r in rows)
    assert all(r["predicted_name"] == names[r["predicted_wnid"]] for r in rows)
    in_sample = {r["sha256"] for r in export.rows if r["split"] == "train"}
    assert not in_sample & {r["sha256"] for r in rows}, "suspects must be out-of-sample"
    p = [float(r["p_given"]) for r in rows]
    assert p == sorted(p)
    assert all(r["given_wnid"] != r["predicted_wnid"] for r in rows)
    assert report["suspects"]["count"] == len(rows)


def test_same_seed_same_result_other_seed_differs(
    run_dir: Path, export: BuiltExport, tmp_path: Path
) -> None:
    again = train(export.root, tmp_path / "again", tiny())
    first = weights(run_dir / "checkpoint.pt")
    second = weights(tmp_path / "again" / "checkpoint.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)
    report = json.loads((run_dir / "report.json").read_text())
    assert again.history[-1]["train_loss"] == report["history"][-1]["train_loss"]
    train(export.root, tmp_path / "other", tiny(seed=4, epochs=1))
    other = weights(tmp_path / "other" / "checkpoint.pt")
    assert not torch.equal(first["fc.weight"], other["fc.weight"])


def test_resume_continues_an_interrupted_run_to_the_same_weights(
    run_dir: Path, export: BuiltExport, tmp_path: Path
) -> None:
    out = tmp_path / "stopped"

    def stop_after_first(record: dict) -> None:
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(export.root, out, tiny(), on_epoch_end=stop_after_first)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 1
    # Without --resume the checkpoint is not silently overwritten.
    code = main(["train", str(export.root), "--out", str(out), "--epochs", "2", *TINY])
    assert code != 0
    seen: list[int] = []
    result = train(
        export.root, out, tiny(), resume=True, on_epoch_end=lambda r: seen.append(r["epoch"])
    )
    assert seen == [2] and result.resumed_from == 1
    assert [h["epoch"] for h in result.history] == [1, 2]
    done, straight = weights(out / "checkpoint.pt"), weights(run_dir / "checkpoint.pt")
    assert all(torch.equal(done[k], straight[k]) for k in done)


def test_webdataset_and_csv_exports_give_the_same_images_as_the_folders(
    export: BuiltExport, tmp_path: Path
) -> None:
    folders = load_split(
        open_export(export.root, "imagefolder"), "val", 32, tmp_path, progress=False
    )
    shards = load_split(open_export(export.root, "webdataset"), "val", 32, tmp_path, progress=False)
    assert len(folders) == len(shards) == 10
    by_sha = dict(zip(folders.sha256, range(len(folders)), strict=True))
    for j, sha in enumerate(shards.sha256):
        i = by_sha[sha]
        assert folders.labels[i] == shards.labels[j]
        assert (folders.images[i] == shards.images[j]).all()
    # A csv export: the manifest alone, its paths naming the originals elsewhere.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "classes.json").write_bytes((export.root / "classes.json").read_bytes())
    with (bare / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(export.rows[0]))
        writer.writeheader()
        writer.writerows(r | {"path": str(export.root / r["path"])} for r in export.rows)
    listed = load_split(open_export(bare), "val", 32, tmp_path, progress=False)
    assert open_export(bare).format.name == "csv"
    assert listed.sha256 == folders.sha256 and (listed.images == folders.images).all()
    result = train(export.root, tmp_path / "wds", tiny(epochs=1, export_format="webdataset"))
    assert len(result.predictions["test"].cache) == 10


def test_init_fine_tunes_from_a_checkpoint(
    run_dir: Path, export: BuiltExport, tmp_path: Path
) -> None:
    result = train(export.root, tmp_path / "ft", tiny(epochs=1, init=run_dir / "checkpoint.pt"))
    assert result.init_skipped == []
    # A checkpoint of another class count keeps everything but the head.
    other = build_model("resnet18", 7, width=8)
    torch.save(other.state_dict(), tmp_path / "seven.pt")
    result = train(export.root, tmp_path / "ft7", tiny(epochs=1, init=tmp_path / "seven.pt"))
    assert result.init_skipped == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize(
    ("arch", "params"),
    [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032)],
)
def test_architectures_match_the_published_sizes(arch: str, params: int) -> None:
    model = build_model(arch, 1000)
    assert sum(p.numel() for p in model.parameters()) == params
    small = build_model(arch, 5, width=8).eval()
    assert small(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


def test_bad_inputs_are_one_line_errors(
    export: BuiltExport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases: list[tuple[list[str], str]] = [
        (["train", str(tmp_path / "nowhere")], "does not exist"),
        (["train", str(tmp_path)], "no classes.json"),
        (["train", str(export.root), "--arch", "vgg16"], "Unknown architecture"),
    ]
    if not torch.cuda.is_available():
        cases.append((["train", str(export.root), "--device", "cuda"], "no CUDA"))
    for args, words in cases:
        capsys.readouterr()
        assert main([*args, "--out", str(tmp_path / "o")]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err


def _seed_database(settings: Settings, export: BuiltExport) -> dict[str, int]:
    """The exported candidates, accepted by votes, as the export stage found them."""
    from synset_builder.crawl.store import add_image

    engine = make_engine(settings.database_url)
    ids: dict[str, int] = {}
    with session_scope(engine) as session:
        synsets = {w: Synset(wnid=w, name=w, target=True) for w in export.wnids}
        session.add_all(synsets.values())
        session.flush()
        for row in export.rows:
            image = add_image(session, settings.data_dir, export.images[row["sha256"]])
            cand = Candidate(image_id=image.id, synset_id=synsets[row["wnid"]].id, source="test")
            session.add(cand)
            session.flush()
            session.add(Consensus(candidate_id=cand.id, p_yes=0.99, decision="accepted",
                                  method="dynamic", n_votes=3))  # fmt: skip
            ids[row["sha256"]] = cand.id
    engine.dispose()
    return ids


def test_suspects_are_requeued_and_served_again(
    export: BuiltExport, settings: Settings, cli: Callable, tmp_path: Path
) -> None:
    from synset_builder.consensus.live import open_clause

    ids = _seed_database(settings, export)
    engine = make_engine(settings.database_url)

    def served() -> set[int]:
        with session_scope(engine) as s:
            return set(s.scalars(select(Candidate.id).join(Image).where(open_clause())))

    assert served() == set(), "accepted candidates are not served before the requeue"
    out = tmp_path / "run"
    done = cli(
        "train", str(export.root), "--out", str(out), "--epochs", "1", "--requeue",
        "--force-suspects", *TINY,
    )  # fmt: skip
    assert done.code == 0, done.err
    with (out / "suspects.csv").open() as fh:
        suspects = {ids[r["sha256"]]: r for r in csv.DictReader(fh)}
    assert suspects and "Requeued" in done.out
    with session_scope(engine) as s:
        rows = s.scalars(select(Requeue)).all()
        assert {r.candidate_id for r in rows} == set(suspects)
        assert all(r.resolved_at is None and "trainer suspect" in r.reason for r in rows)
        assert all(suspects[r.candidate_id]["predicted_wnid"] in r.reason for r in rows)
        assert all(f"({suspects[r.candidate_id]['predicted_name']})" in r.reason for r in rows)
        decisions = dict(s.execute(select(Consensus.candidate_id, Consensus.decision)).all())
    # Waiting for fresh votes again: pending (the funnel counts them as being voted).
    assert {decisions[c] for c in suspects} == {"pending"}
    assert {d for c, d in decisions.items() if c not in suspects} == {"accepted"}
    assert served() == set(suspects)
    # Requeueing the same file again adds nothing.
    again = cli("requeue", str(out / "suspects.csv"), "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out) == {
        "requeued": 0,
        "already_open": len(suspects),
        "not_found": [],
        "to_review": 0,
    }
    with session_scope(engine) as s:
        assert len(s.scalars(select(Requeue)).all()) == len(suspects)
    engine.dispose()


def test_requeue_of_a_missing_file_is_one_line(cli: Callable, tmp_path: Path) -> None:
    done = cli("requeue", str(tmp_path / "none.csv"))
    assert done.code != 0 and "does not exist" in done.err and "Traceback" not in done.err


def test_unreadable_images_are_skipped_with_a_reason_and_the_cache_is_reused(
    export: BuiltExport, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "export"
    shutil.copytree(export.root, root)
    broken = export.rows[0] | {"path": "val/broken.jpg", "split": "val", "sha256": "0" * 64}
    (root / "val" / "broken.jpg").write_bytes(export.images[export.rows[0]["sha256"]][:200])
    with (root / "manifest.csv").open("a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=list(broken)).writerow(broken)
    cache = load_split(open_export(root), "val", 32, tmp_path / "cache", progress=False)
    assert len(cache) == 10
    assert [s["path"] for s in cache.skipped] == ["val/broken.jpg"]
    assert "cannot decode" in cache.skipped[0]["reason"]
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()}
    again = load_split(open_export(root), "val", 32, tmp_path / "cache", progress=False)
    assert again.sha256 == cache.sha256
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()} == files


def test_held_out_folds_give_every_training_image_an_unseen_prediction(
    export: BuiltExport, tmp_path: Path
) -> None:
    out = tmp_path / "folds"
    # One epoch does not beat chance; --force-suspects keeps the suspects to test them.
    code = main(
        ["train", str(export.root), "--out", str(out), "--epochs", "1", "--folds", "2",
         "--force-suspects", *TINY]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["held_out"]["folds"] == 2 and report["held_out"]["images"] == 30
    assert "train (held-out folds)" in report["suspects"]["from"]
    assert all((out / "folds" / k / "checkpoint.pt").is_file() for k in ("0", "1"))
    with (out / "suspects.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    train_rows = [r for r in rows if r["split"] == "train"]
    assert train_rows, "a one-epoch model misjudges some of the 30 held-out training images"
    assert {r["path"].split("/")[0] for r in train_rows} == {"train"}
    # The fold models really train without their fold: leaving out all but one image fails.
    train_shas = frozenset(r["sha256"] for r in export.rows if r["split"] == "train")
    with pytest.raises(InvalidInput, match="1 training images"):
        train(export.root, tmp_path / "one", tiny(epochs=1), exclude=train_shas - {min(train_shas)})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_device_trains_on_the_gpu_when_there_is_one(
    export: BuiltExport, tmp_path: Path
) -> None:
    result = train(export.root, tmp_path / "gpu", tiny(device="auto", epochs=2))
    assert result.device == "cuda"
    assert result.model is not None
    assert next(result.model.parameters()).is_cuda
    assert result.predictions["val"].probs.shape == (10, 5)
