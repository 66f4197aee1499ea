"""``synset votes import CSV``: votes collected elsewhere (item, worker, label)."""

from __future__ import annotations

from pathlib import Path

import typer

from synset_builder.cli.common import open_session, settings

votes_app = typer.Typer(help="Votes collected outside the web app.", no_args_is_help=True)

SHOWN = 10


@votes_app.command("import")
def import_cmd(
    csv_path: Path = typer.Argument(..., help="CSV whose first columns are item, worker, label."),
    wnid: str | None = typer.Option(
        None, "--synset", help="Read items as image sha256 hashes of candidates of this synset."
    ),
) -> None:
    """Add votes; workers become annotator accounts; re-importing adds nothing twice."""
    from synset_builder.consensus.votes_import import import_votes

    with open_session(settings()) as session:
        result = import_votes(session, csv_path, wnid=wnid)
    typer.echo(
        f"{result.rows} rows: {result.added} votes added, {result.already} already present, "
        f"{len(result.skipped)} skipped."
    )
    for reason in result.skipped[:SHOWN]:
        typer.echo(f"skipped {reason}", err=True)
    if len(result.skipped) > SHOWN:
        typer.echo(f"... and {len(result.skipped) - SHOWN} more skipped rows.", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(votes_app, name="votes")
