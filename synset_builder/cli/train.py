"""``synset train`` (baseline + report) and ``synset requeue`` (suspects back to voting).

torch is imported only when ``synset train`` runs, so every other command starts
fast and works without the ``train`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from synset_builder.cli.common import open_session, print_json, settings, writing_to
from synset_builder.errors import SynsetError

if TYPE_CHECKING:
    from synset_builder.train.requeue import RequeueResult


class TrainExtraMissing(SynsetError):
    """torch or matplotlib is not installed."""


def _requeue_file(path: Path, source: str) -> RequeueResult:
    from synset_builder.train.requeue import read_suspects, requeue

    suspects = read_suspects(path)
    cfg = settings()
    with open_session(cfg) as session:
        return requeue(session, suspects, source=source, config=cfg.consensus)


def _say_requeued(result: RequeueResult) -> None:
    voting = len(result.requeued) - len(result.to_review)
    typer.echo(
        f"Requeued {voting} candidate(s) for more votes "
        f"({len(result.already_open)} already waiting, {len(result.not_found)} not in this "
        "database)."
    )
    if result.to_review:
        typer.echo(
            f"{len(result.to_review)} went to review instead: every annotator who could vote "
            "on them already has (a curator decides them on /review, under 'suspect')."
        )


def train_command(
    export_dir: Path = typer.Argument(
        ...,
        metavar="EXPORT_DIR",
        help="An export folder (imagefolder, webdataset, parquet or csv).",
    ),
    arch: str = typer.Option("resnet18", help="resnet18, resnet34 or resnet50."),
    epochs: int = typer.Option(16, min=1, help="Training epochs."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
    out: Path | None = typer.Option(
        None, help="Where reports and the checkpoint go (default: runs/<export>-<arch>)."
    ),
    seed: int = typer.Option(0, help="Seed for weights, shuffling and crops."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    init: Path | None = typer.Option(None, help="Start from these weights (fine-tuning)."),
    image_size: int = typer.Option(160, help="Training crop side in pixels."),
    batch_size: int = typer.Option(128, help="Images per step."),
    width: int = typer.Option(64, help="Channels of the first stage (64 = the paper's)."),
    lr: float | None = typer.Option(None, help="Peak learning rate (default 0.1 x batch/256)."),
    compile_model: bool = typer.Option(False, "--compile", help="Use torch.compile."),
    workers: int = typer.Option(4, help="Threads decoding JPEGs into the cache."),
    export_format: str | None = typer.Option(
        None,
        "--format",
        help="imagefolder, webdataset, parquet or csv (default: what the export holds).",
    ),
    max_suspects: int = typer.Option(200, help="Most rows written to suspects.csv."),
    force_suspects: bool = typer.Option(
        False,
        "--force-suspects",
        help="Write suspects even when validation accuracy is not clearly above chance.",
    ),
    confusion_classes: int = typer.Option(
        20, help="Classes shown in confusion.png; with more, the most confused ones."
    ),
    folds: int = typer.Option(
        0, help="Also find suspects in the train split with K held-out-fold models (K trainings)."
    ),
    cache_dir: Path | None = typer.Option(None, help="Decoded-image cache (default OUT/cache)."),
    do_requeue: bool = typer.Option(
        False, "--requeue", help="Send the suspects back for more votes afterwards."
    ),
) -> None:
    """Train a baseline ResNet on an export; write a checkpoint, report.json, plots and
    suspects.csv (labels the model doubts)."""
    try:
        from synset_builder.train.config import TrainConfig
        from synset_builder.train.folds import add_held_out
        from synset_builder.train.loop import train
        from synset_builder.train.report import write_reports
    except ImportError as exc:
        raise TrainExtraMissing(
            f"Training needs the train extra ({exc.name} is missing): "
            "pip install 'synset-builder[train]'."
        ) from exc
    cfg = TrainConfig(
        arch=arch, epochs=epochs, device=device, seed=seed, image_size=image_size,
        batch_size=batch_size, width=width, lr=lr, compile=compile_model, workers=workers,
        max_suspects=max_suspects, folds=folds, export_format=export_format, init=init,
        cache_dir=cache_dir, force_suspects=force_suspects, confusion_classes=confusion_classes,
    )  # fmt: skip
    out = out or Path("runs") / f"{export_dir.resolve().name}-{arch}"
    with writing_to(out):
        result = train(export_dir, out, cfg, resume=resume)
        if cfg.folds:
            add_held_out(result, out, cfg.folds)
        report = write_reports(result, out)
    _say_scores(report)
    _say_run(report)
    requeued = do_requeue and not report["suspects"]["withheld"]
    if do_requeue and not requeued:
        typer.echo("Nothing requeued: this run wrote no suspects.", err=True)
    elif requeued:
        _say_requeued(_requeue_file(out / "suspects.csv", f"synset train {out}"))
    _say_files(report, out, requeued=requeued)


def _say_run(report: dict[str, Any]) -> None:
    """Speed, then the report's warning (a model not clearly above chance) with what
    it meant for suspects.csv."""
    typer.echo(f"{report['images_per_second']:.1f} images/s on {report['device_name']}.")
    if "warning" in report:
        typer.echo(f"Warning: {report['warning']}", err=True)
        typer.echo(
            "Suspects were written anyway (--force-suspects)."
            if not report["suspects"]["withheld"]
            else "No suspects written; --force-suspects writes them anyway.",
            err=True,
        )


def _say_files(report: dict[str, Any], out: Path, *, requeued: bool) -> None:
    """The closing block: where the model, the report and the suspects are, and what
    to do with each, so a user never has to guess the run folder's contents."""
    ckpt, suspects = out / "checkpoint.pt", out / "suspects.csv"
    info = report["suspects"]
    if info["withheld"]:
        doubt = "none written: the model did not beat chance; --force-suspects writes them"
    elif not info["count"]:
        doubt = "no doubtful labels: the model agrees with every held-out label"
    elif requeued:
        doubt = f"{info['count']} doubtful label(s), sent back for votes"
    else:
        doubt = (
            f"{info['count']} doubtful label(s), least likely first; "
            f"send them back for votes: synset requeue {suspects}"
        )
    typer.echo("")
    typer.echo(
        f"Model:    {ckpt}  (load: synset_builder.train.checkpoint.load_model(path); "
        f"fine-tune: synset train EXPORT --init {ckpt})"
    )
    typer.echo(
        f"Report:   {out / 'report.json'}  (scores per split and class; "
        "curves.png, confusion.png and confused_pairs.png beside it)"
    )
    typer.echo(f"Suspects: {suspects}  ({doubt})")


def _say_scores(report: dict[str, Any]) -> None:
    """Top-1 per split, and top-5 where the report has it (more than five classes)."""
    top5 = report.get("top5", {})
    for split, top1 in report["top1"].items():
        also = f"  top-5 {top5[split]:.3f}" if split in top5 else ""
        typer.echo(f"{split:5s} top-1 {top1:.3f}{also}  ({report['images'][split]} images)")
    if "held_out" in report:
        held = report["held_out"]
        also = f"  top-5 {held['top5']:.3f}" if "top5" in held else ""
        typer.echo(
            f"train top-1 {held['top1']:.3f}{also}  (held-out folds, {held['images']} images)"
        )


def requeue_command(
    suspects_csv: Path = typer.Argument(
        ..., metavar="SUSPECTS_CSV", help="A suspects.csv written by 'synset train'."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Mark the candidates in SUSPECTS_CSV undecided so annotators vote on them again."""
    result = _requeue_file(suspects_csv, str(suspects_csv))
    if as_json:
        print_json(result.as_json())
    else:
        _say_requeued(result)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("requeue")(requeue_command)
