"""``synset clean``: quality filter and near-duplicate removal before anyone votes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from synset_builder.cli.common import SettingsHelp, open_session, print_json, settings
from synset_builder.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.orm import Session

    from synset_builder.clean.run import CleanReport
    from synset_builder.config import Settings
    from synset_builder.config.clean import CleanConfig


def _config(
    cfg: Settings,
    max_distance: int | None,
    min_side: int | None,
    algo: str | None,
    placeholder_files: Iterable[Path] = (),
) -> CleanConfig:
    """The clean settings with the command's options; the options meet the same limits."""
    from pydantic import ValidationError

    extra = tuple(placeholder_files)
    try:
        return cfg.clean.with_options(
            min_side=min_side,
            max_distance=max_distance,
            hash=algo,
            placeholders=(*cfg.clean.placeholders, *extra) if extra else None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "option"
        raise InvalidInput(f"Invalid clean option {where}: {first['msg']}.") from exc


def _print_duplicates(session: Session) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import aliased

    from synset_builder.db.models import Candidate, Image, Synset

    kept = aliased(Candidate)
    kept_image = aliased(Image)
    rows = session.execute(
        select(Image.sha256, Synset.wnid, kept_image.sha256)
        .join(Candidate, Candidate.image_id == Image.id)
        .join(Synset, Synset.id == Candidate.synset_id)
        .join(kept, kept.id == Candidate.near_duplicate_of)
        .join(kept_image, kept_image.id == kept.image_id)
        .order_by(Synset.wnid, Image.sha256)
    )
    for sha, wnid, original in rows:
        typer.echo(f"{sha}  near_duplicate: of {original} in {wnid}")


def _summary(report: CleanReport, dry_run: bool) -> None:
    verb = "would be" if dry_run else "are"
    typer.echo(f"Hashed {report.hashed} new image(s).")
    if report.reused:
        typer.echo(f"Reused the hashes of {report.reused} image(s) from a dry run.")
    if report.missing:
        typer.echo(f"{report.missing} image file(s) are missing; they are looked for next run.")
    total = sum(report.reasons.values())
    # A line ending in a colon reads as cut short: say "none".
    typer.echo(f"{total} image(s) {verb} rejected by quality:" + ("" if total else " none"))
    for reason, n in sorted(report.reasons.items()):
        typer.echo(f"  {reason}: {n}")
    typer.echo(f"{report.near_duplicates} candidate(s) {verb} near duplicates "
               f"({report.groups} group(s) of near-identical images).")  # fmt: skip
    typer.echo(f"{report.conflicts} candidate(s) share a picture with an unrelated synset.")
    typer.echo(f"{report.reference_matches} image(s) copy a reference picture.")
    typer.echo(f"{report.greyscale} image(s) are greyscale (flagged, kept).")


def clean(
    max_distance: int | None = typer.Option(
        None,
        "--max-distance",
        help="Hamming distance for near duplicates (default {setting:clean.max_distance}).",
    ),
    min_side: int | None = typer.Option(
        None,
        "--min-side",
        help="Reject images whose shorter side is below PX (default {setting:clean.min_side}).",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print what would be rejected and why; decide nothing. The hashes it "
        "computes are kept for the next run.",
    ),
    keep_sha: list[str] = typer.Option(
        [], "--keep", metavar="SHA256", help="Keep this image whatever the filter says."
    ),
    against: Path | None = typer.Option(
        None, "--against", help="Flag copies of pictures in this folder or export."
    ),
    algo: str | None = typer.Option(
        None, "--hash", help="phash or dhash (default {setting:clean.hash})."
    ),
    placeholder_files: list[Path] = typer.Option(
        [],
        "--placeholder",
        metavar="FILE",
        help="A known placeholder picture; its near duplicates are rejected (repeatable).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        help="Hash on Dask workers, which write their batches: local:N or tcp://HOST:PORT.",
    ),
) -> None:
    """Reject broken, tiny, blurred, blank and placeholder images; mark near duplicates.

    Nothing is deleted: a rejected image keeps its row and file, with the reason.
    """
    # Long only by its list of typer options; the work is in the helpers below.
    from synset_builder.clean.fingerprint import HASHERS
    from synset_builder.clean.run import keep, run_clean
    from synset_builder.distributed import cluster_runner

    if algo is not None and algo not in HASHERS:
        raise InvalidInput(f"Unknown hash {algo!r}; use one of {', '.join(HASHERS)}.")
    cfg = settings()
    clean_cfg = _config(cfg, max_distance, min_side, algo, placeholder_files)
    with cluster_runner(cluster) as runner, open_session(cfg) as session:
        for sha in keep_sha:
            keep(session, sha)
        report = run_clean(
            session, cfg.data_dir, clean_cfg, against=against, commit=not dry_run, runner=runner
        )
        if dry_run and not as_json:
            for sha, reason in report.rejected:
                typer.echo(f"{sha}  {reason}")
            _print_duplicates(session)
        if dry_run:
            session.rollback()
    if as_json:
        print_json({"dry_run": dry_run, **report.as_json()})
    else:
        _summary(report, dry_run)


def register(app: typer.Typer) -> None:
    app.command("clean", cls=SettingsHelp)(clean)
