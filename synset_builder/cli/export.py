"""``synset export OUT`` and ``synset verify [OUT...]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from synset_builder.cli.common import engine_for, open_session, print_json, settings, writing_to
from synset_builder.errors import DatabaseUnavailable, InvalidInput, SynsetError

if TYPE_CHECKING:
    from synset_builder.export.splits import SplitSpec
    from synset_builder.export.verify import VerifyReport
    from synset_builder.export.write import ExportReport

# export.formats.WRITERS, spelled out so that --help needs no export code
# (tests/synset_builder/test_cli_help.py checks that it names every writer).
FORMATS_HELP = "Repeatable: imagefolder, webdataset, parquet, csv."


def export(
    out: Path = typer.Argument(..., help="Folder to write (empty, new, or an earlier export)."),
    formats: list[str] = typer.Option(["imagefolder"], "--format", "-f", help=FORMATS_HELP),
    splits: str = typer.Option("0.8,0.1,0.1", "--splits", help="Fractions train,val,test."),
    val_per_class: int | None = typer.Option(
        None, "--val-per-class", min=0, help="ImageNet style: N val images per class."
    ),
    test_per_class: int | None = typer.Option(
        None, "--test-per-class", min=0, help="ImageNet style: N test images per class."
    ),
    seed: int = typer.Option(0, "--seed", help="Changes which groups land in val/test."),
    level: str | None = typer.Option(None, "--level", help="'depth:N': export as ancestors."),
    classes: str | None = typer.Option(
        None, "--classes", help="File of wnids: export each image as its nearest listed ancestor."
    ),
    multi_label: bool = typer.Option(
        False, "--multi-label", help="Keep images accepted for unrelated classes, with each label."
    ),
    min_per_class: int = typer.Option(1, "--min-per-class", min=1, help="Drop thinner classes."),
    max_per_class: int | None = typer.Option(None, "--max-per-class", min=1, help="Cap classes."),
    licenses: str | None = typer.Option(
        None, "--licenses", help="Comma-separated licences to keep (e.g. cc0,by,by-sa)."
    ),
    resize: int | None = typer.Option(None, "--resize", min=8, help="Shorter side in pixels."),
    quality: int = typer.Option(90, "--quality", min=1, max=100, help="JPEG quality."),
    shard_size: str = typer.Option(
        "1GB", "--shard-size", help="WebDataset shard and Parquet file size (e.g. 1GB, 200MB)."
    ),
    blur_faces: bool = typer.Option(
        False, "--blur-faces", help="Blur detected faces (needs the 'privacy' extra)."
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes; 0 = one per core."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Write train/val/test splits of the accepted images, with a datasheet."""
    # Long by its option list only; the options are parsed and the report printed in
    # helpers. (A comment, not the docstring: typer shows the docstring in --help.)
    from synset_builder.db.session import describe
    from synset_builder.export.formats import parse_size
    from synset_builder.export.labels import parse_level
    from synset_builder.export.render import RenderSpec
    from synset_builder.export.run import ExportConfig, run_export

    cfg = settings()
    split, allowed = _split_spec(splits, val_per_class, test_per_class, seed), _licences(licenses)
    config = ExportConfig(
        out=out,
        formats=tuple(dict.fromkeys(formats)),
        split=split,
        level=parse_level(level, classes),
        multi_label=multi_label,
        min_per_class=min_per_class,
        max_per_class=max_per_class,
        licenses=allowed,
        render=RenderSpec(resize=resize, quality=quality, blur_faces=blur_faces),
        shard_size=parse_size(shard_size),
        workers=workers,
        contact=cfg.contact,
    )
    # A failed write names OUT; export.json and the export's row come last, so an
    # export that failed half-way never looks complete.
    with writing_to(out), open_session(cfg) as session:
        report = run_export(session, cfg.data_dir, config, database=describe(cfg.database_url))
    if cfg.contact == type(cfg).model_fields["contact"].default:
        report.warnings.append(
            f"the takedown contact in croissant.json and the datasheet is the tool's page "
            f"({cfg.contact}), not yours: set SYNSET_CONTACT to an address you read."
        )
    if as_json:
        print_json(report.as_json())
    else:
        _print_export(report, out)
    for line in report.warnings:
        typer.echo(f"warning: {line}", err=True)


def _split_spec(
    splits: str, val_per_class: int | None, test_per_class: int | None, seed: int
) -> SplitSpec:
    """Fractions, or ImageNet's fixed counts per class when either count is given."""
    from synset_builder.export.splits import SplitSpec, parse_fractions

    per_class = val_per_class is not None or test_per_class is not None
    return SplitSpec(
        fractions=parse_fractions(splits),
        val_per_class=val_per_class if per_class else None,
        test_per_class=test_per_class if per_class else None,
        seed=seed,
    )


def _licences(licenses: str | None) -> frozenset[str] | None:
    """The licence families ``--licenses`` keeps; None keeps every licence."""
    from synset_builder.export.select import licence_family

    if licenses is None:
        return None
    allowed = frozenset(licence_family(x) for x in licenses.split(",") if x.strip())
    if not allowed:
        raise InvalidInput("--licenses names no licence.")
    return allowed


def _print_export(report: ExportReport, out: Path) -> None:
    """The summary line, then only the counts that are not zero."""
    parts = ", ".join(f"{s} {report.splits.get(s, 0)}" for s in ("train", "val", "test"))
    typer.echo(f"Exported {report.images} images in {report.classes} classes to {out} ({parts}).")
    notes = [
        (report.ambiguous, "ambiguous images left out (see export.json)"),
        (len(report.dropped_classes), "classes below --min-per-class dropped"),
        (report.taken_down, "taken-down images withheld"),
        (report.faces_blurred, "faces blurred"),
        (report.reused, "files reused from the previous run"),
        (report.moved, "earlier images moved to keep near-duplicate groups together"),
        (report.removed_files, "files of the previous run removed"),
        (len(report.unreadable), "images left out: stored file missing or unreadable"),
    ]
    for count, what in notes:
        if count:
            typer.echo(f"  {count} {what}")
    typer.echo(f"Datasheet: {out / 'datasheet.html'}")


def _print_report(report: VerifyReport) -> None:
    if report.ok:
        typer.echo(
            f"{report.out}: OK ({report.images} images, {report.files_checked} files checked)"
        )
    else:
        typer.echo(f"{report.out}: {len(report.problems)} problem(s)")
        for line in report.problems:
            typer.echo(f"  {line}")
    if not report.database_checked:
        typer.echo("  (no database: takedowns and current near-duplicate groups not checked)")


def verify(
    outs: list[Path] = typer.Argument(
        None, help="Export folders; none = every export the database recorded."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
) -> None:
    """Re-check exports: checksums, no leakage across splits, no taken-down image."""
    from sqlalchemy import select

    from synset_builder.db.models import Export
    from synset_builder.db.session import session_scope
    from synset_builder.export.verify import verify_export

    cfg = settings()
    try:
        engine = engine_for(cfg)
    except DatabaseUnavailable:
        if not outs:
            raise
        engine = None
    reports: list[VerifyReport] = []
    if engine is None:
        reports = [verify_export(out) for out in outs]
    else:
        with session_scope(engine) as session:
            if not outs:
                recorded = session.scalars(select(Export.out_path).distinct())
                outs = [Path(p) for p in sorted(set(recorded)) if Path(p).is_dir()]
                if not outs:
                    raise InvalidInput("The database records no export folder that still exists.")
            reports = [verify_export(out, session) for out in outs]
        engine.dispose()
    if as_json:
        print_json([r.as_json() for r in reports])
    else:
        for report in reports:
            _print_report(report)
    failed = sum(1 for r in reports if not r.ok)
    if failed:
        raise SynsetError(f"{failed} of {len(reports)} export(s) failed verification (see above).")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("verify")(verify)
