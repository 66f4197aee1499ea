"""``synset audit start`` / ``synset audit report``: the blind precision audit.

The consensus threshold is what the model believes; the audit is what curators
measure: a uniform sample of accepted items, judged blind on the review page
(``synset serve``, /review), with a 95% Wilson interval per synset and pooled.
"""

from __future__ import annotations

import typer

from synset_builder.cli.common import open_session, print_json, settings
from synset_builder.decision import Decision

audit_app = typer.Typer(
    help="Blind precision audit: sample accepted items for curators to judge.",
    no_args_is_help=True,
)


@audit_app.command("start")
def start(
    wnids: list[str] = typer.Argument(..., help="Synsets to audit (wnids)."),
    n: int = typer.Option(50, "--n", min=1, max=100_000, help="Items to draw per synset."),
    seed: int | None = typer.Option(
        None, "--seed", min=0, max=2**48, help="Draw the same sample again (default: random)."
    ),
    rejected: bool = typer.Option(
        False, "--rejected", help="Also draw N rejected items (a missed positive is found so)."
    ),
    more: bool = typer.Option(
        False, "--more", help="Draw another round even if the last one is not judged yet."
    ),
) -> None:
    """Draw a uniform random sample of each synset's accepted items into the audit queue."""
    from synset_builder.review.audit import start as draw

    with open_session(settings()) as session:
        drawn = draw(session, wnids, n=n, seed=seed, rejected=rejected, more=more)
    for d in drawn:
        if d.in_progress:
            typer.echo(
                f"{d.wnid}: an audit is in progress (round {d.round}); nothing added "
                "(--more draws another round)."
            )
        elif d.added == 0:
            typer.echo(f"{d.wnid}: nothing left to draw.")
        else:
            typer.echo(f"{d.wnid}: {d.added} item(s) drawn, round {d.round}, seed {d.seed}.")
    typer.echo("Curators judge them first on the review page: /review.")


@audit_app.command("report")
def report(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Audited precision per synset and pooled, and the items the audit found wrong."""
    from synset_builder.review.audit import report as build
    from synset_builder.review.decisions import read_tallies

    with open_session(settings()) as session:
        accepted = {sid: t.counts["accepted"] for sid, t in read_tallies(session).items()}
        found = build(session, accepted)
    if as_json:
        print_json(
            {
                "synsets": [
                    {
                        "wnid": wnid,
                        "name": name,
                        **fig.as_json(),
                        "rejected_sampled": fig.rejected_sampled,
                        "rejected_judged": fig.rejected_judged,
                        "rejected_wrong": fig.rejected_wrong,
                    }  # fmt: skip
                    for wnid, name, fig in found.synsets
                ],
                "pooled": found.pooled.as_json() if found.pooled else None,
                "wrong": [
                    {
                        "wnid": w.wnid,
                        "candidate_id": w.candidate_id,
                        "sha256": w.sha256,
                        "drawn_as": w.kind,
                        "judged_by": w.judged_by,
                    }  # fmt: skip
                    for w in found.wrong
                ],
            }
        )
        return
    if not found.synsets:
        typer.echo("No audit yet; start one with 'synset audit start WNID'.")
        return
    for wnid, name, fig in found.synsets:
        data = fig.as_json()
        line = f"{wnid}  {name[:28]}  judged {fig.judged}/{fig.sampled}"
        if fig.judged:
            line += (
                f"  precision {data['precision']:.3f} "
                f"(95% interval {data['low']:.3f}-{data['high']:.3f})"
            )
        if fig.rejected_sampled:
            line += f"  rejected: {fig.rejected_wrong}/{fig.rejected_judged} wrongly rejected"
        typer.echo(line)
    if found.pooled is not None:
        typer.echo(found.pooled.line())
    for w in found.wrong:
        said = "not a" if w.kind == Decision.accepted else "a"
        typer.echo(
            f"wrong: item {w.candidate_id} ({w.sha256[:12]}) was {w.kind} for {w.wnid}; "
            f"{w.judged_by or 'a curator'} judged it {said} {w.wnid} (now decided so)."
        )


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
