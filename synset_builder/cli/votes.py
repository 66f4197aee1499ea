"""``synset votes import`` and ``synset votes export``: votes that come from, or go to,
other tools (a spreadsheet, Mechanical Turk, Label Studio, crowd-kit)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from synset_builder.cli.common import open_session, settings, writing_to

votes_app = typer.Typer(help="Votes collected outside the web app.", no_args_is_help=True)

SHOWN = 10
FORMATS = ("csv", "mturk", "label-studio")


@votes_app.command("import")
def import_cmd(
    path: Path = typer.Argument(
        ..., help="Vote file: item,worker,label CSV, MTurk batch results, or Label Studio JSON."
    ),
    fmt: str = typer.Option(
        "csv", "--format", "-f", help=f"One of {', '.join(FORMATS)}.", show_default=True
    ),
    wnid: str | None = typer.Option(
        None, "--synset", help="Match items only to candidates of this synset."
    ),
    item_column: str | None = typer.Option(
        None, "--item-column", help="MTurk: the Input.* column; Label Studio: the data key."
    ),
    answer_column: str | None = typer.Option(
        None, "--answer-column", help="MTurk: the Answer.* column; Label Studio: the from_name."
    ),
) -> None:
    """Add votes; workers become annotator accounts; re-importing adds nothing twice."""
    from synset_builder.consensus.votes_import import import_votes

    with open_session(settings()) as session:
        result = import_votes(
            session, path, wnid=wnid, fmt=fmt, item_column=item_column,
            answer_column=answer_column,
        )  # fmt: skip
    typer.echo(
        f"{_n(result.rows, 'row')}: {_n(result.added, 'vote')} added, {result.already} already "
        f"present, {len(result.skipped)} skipped."
    )
    for reason, count in result.by_reason().most_common():
        typer.echo(f"  {count} skipped: {reason}")
    # In file order: the reasons are found in two passes (items, then labels and workers).
    by_line = sorted(result.skipped, key=lambda s: [int(n) for n in re.findall(r"\d+", s.where)])
    for skip in by_line[:SHOWN]:
        typer.echo(f"skipped {skip.where}: {skip.reason} ({skip.detail!r})", err=True)
    if len(result.skipped) > SHOWN:
        typer.echo(f"... and {len(result.skipped) - SHOWN} more skipped rows.", err=True)


@votes_app.command("export")
def export_cmd(
    out: Path = typer.Argument(..., help="CSV to write: task,worker,label (crowd-kit's layout)."),
    wnid: str | None = typer.Option(None, "--synset", help="Only this synset's candidates."),
    gold: bool = typer.Option(
        False, "--gold", help="Also write the gold answers to OUT's name + .gold.csv."
    ),
) -> None:
    """Every vote as task (candidate id), worker, label (1 yes, 0 no), in arrival order."""
    from synset_builder.consensus.votes_export import export_votes

    with open_session(settings()) as session, writing_to(out):
        result = export_votes(session, out, wnid=wnid, gold=gold)
    typer.echo(f"{result.votes} votes on {result.tasks} items by {result.workers} workers -> {out}")
    if result.gold_path is not None:
        typer.echo(f"{result.gold} gold answers -> {result.gold_path}")


def register(app: typer.Typer) -> None:
    app.add_typer(votes_app, name="votes")


def _n(count: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
