"""``synset gold add CSV``: candidates with known answers, to measure annotators."""

from __future__ import annotations

from pathlib import Path

import typer

from synset_builder.cli.common import open_session, settings

gold_app = typer.Typer(help="Gold items: known answers mixed into annotators' tasks.")


@gold_app.command("add")
def add(csv_path: Path = typer.Argument(..., help="CSV: item,label or sha256,wnid,label.")) -> None:
    """Mark candidates as gold with their known answer (re-running updates answers)."""
    from synset_builder.gold import import_csv

    with open_session(settings()) as session:
        result = import_csv(session, csv_path)
    typer.echo(f"{result.rows} gold items in the file, {result.changed} new or changed.")


def register(app: typer.Typer) -> None:
    app.add_typer(gold_app, name="gold")
