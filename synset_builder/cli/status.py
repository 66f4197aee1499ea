"""``synset status``: the funnel per synset, as a table or JSON for scripts."""

from __future__ import annotations

import typer

from synset_builder.cli.common import open_session, print_json, settings


def status(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list for scripts."),
    all_synsets: bool = typer.Option(
        False, "--all", help="Include non-target ancestors in the table (JSON always has all)."
    ),
    recount: bool = typer.Option(
        False,
        "--recount",
        help="Count everything exactly (a scan of every table; writers wait meanwhile), "
        "reset the kept counters to it and say on stderr which differed.",
    ),
) -> None:
    """Show how far every synset has come: queries, candidates, votes, decisions."""
    from synset_builder import status as funnel_status
    from synset_builder.recount import recount as run_recount

    with open_session(settings()) as session:
        drift = run_recount(session) if recount else None
        rows = funnel_status.funnel(session, targets_only=not (as_json or all_synsets))
    if drift is not None:
        typer.echo(f"Recounted: {len(drift) or 'no'} kept counters differed.", err=True)
        for d in drift:
            typer.echo(f"  {d.subject} {d.counter}: kept {d.kept}, exact {d.exact}", err=True)
    if as_json:
        print_json([r.as_json() for r in rows])
        return
    if not rows:
        typer.echo("No target synsets yet; add some with 'synset hierarchy add'.")
        return
    names = list(funnel_status.COUNTERS)
    header = ["wnid", "name", *names]
    table = [[r.wnid, r.name[:28], *(str(r.counts[n]) for n in names)] for r in rows]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
