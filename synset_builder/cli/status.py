"""``synset status``: the funnel per synset, as a table or JSON for scripts.

On a plain SQLite file it reads without SQLAlchemy (synset_builder/status_sqlite.py,
for start-up time); elsewhere, and for ``--recount``, through the ORM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from synset_builder.cli.common import open_session, print_json, settings

if TYPE_CHECKING:
    from synset_builder.config import Settings


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
    """Show how far every synset has come: queries, candidates, votes, decisions.

    clean: candidates that passed cleaning (the pool annotators are served from);
    accepted / rejected_by_vote / undecided / pending: decisions, once an item has a
    vote or is in its synset's initial round (a clean candidate nobody has voted on
    yet counts under clean only); undecided: the vote cap, nobody left to vote or
    more votes could not settle it; hard: the share of items the crowd cannot tell.
    """
    cfg = settings()
    targets_only = not (as_json or all_synsets)
    rows = None if recount else _without_orm(cfg.database_url, targets_only)
    if rows is None:
        rows = _with_orm(cfg, recount=recount, targets_only=targets_only)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No target synsets yet; add some with 'synset hierarchy add'.")
        return
    counts = [r["counts"] for r in rows]
    names = list(counts[0])  # every row has every counter, in the same order
    header = ["wnid", "name", *names, "hard", "audited"]
    table = [[str(r["wnid"]), str(r["name"])[:28], *(str(c[n]) for n in names),
              _hard(r.get("hard_share")), _audited(r.get("audit"))]
             for r, c in zip(rows, counts, strict=True)]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    from synset_builder.review.figures import pooled_from_rows  # stdlib only

    typer.echo(pooled_from_rows(rows).line())


def _hard(share: Any) -> str:
    """A table cell: the learned share of items the crowd cannot tell, or '-' (the
    last ``synset consensus`` has not learned one: a learned share is never 0)."""
    return f"{share:.2f}" if share else "-"


def _audited(audit: Any) -> str:
    """A table cell: audited precision [95% interval] n=judged, or '-' (never audited)."""
    if not audit:
        return "-"
    if not audit["judged"]:
        return f"0/{audit['sampled']} judged"
    return f"{audit['precision']:.2f} [{audit['low']:.2f}-{audit['high']:.2f}] n={audit['judged']}"


def _without_orm(database_url: str, targets_only: bool) -> list[dict[str, Any]] | None:
    """The plain-SQLite reading (status_sqlite: no SQLAlchemy to import); None when
    the URL is not a plain SQLite file."""
    from synset_builder import status_sqlite

    if status_sqlite.plain_file(database_url) is None:
        return None
    return status_sqlite.funnel(database_url, targets_only=targets_only)


def _with_orm(cfg: Settings, *, recount: bool, targets_only: bool) -> list[dict[str, Any]]:
    from synset_builder import status as funnel_status
    from synset_builder.recount import recount as run_recount

    with open_session(cfg) as session:
        drift = run_recount(session) if recount else None
        rows = funnel_status.funnel(session, targets_only=targets_only)
    if drift is not None:
        typer.echo(f"Recounted: {len(drift) or 'no'} kept counters differed.", err=True)
        for d in drift:
            typer.echo(f"  {d.subject} {d.counter}: kept {d.kept}, exact {d.exact}", err=True)
    return [r.as_json() for r in rows]


def register(app: typer.Typer) -> None:
    app.command("status")(status)
