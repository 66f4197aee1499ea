"""``synset status``: the funnel per synset, as a table or JSON for scripts."""

from __future__ import annotations

import typer

from synset_builder.cli.common import open_session, print_json, settings


def status(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list for scripts."),
    all_synsets: bool = typer.Option(
        False, "--all", help="Include non-target ancestors in the table (JSON always has all)."
    ),
) -> None:
    """Show how far every synset has come: queries, candidates, votes, decisions."""
    from synset_builder.status import COUNTERS, funnel

    with open_session(settings()) as session:
        rows = funnel(session, targets_only=not (as_json or all_synsets))
    if as_json:
        print_json([r.as_json() for r in rows])
        return
    if not rows:
        typer.echo("No target synsets yet; add some with 'synset hierarchy add'.")
        return
    names = list(COUNTERS)
    header = ["wnid", "name", *names]
    table = [[r.wnid, r.name[:28], *(str(r.counts[n]) for n in names)] for r in rows]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
