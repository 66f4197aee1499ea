"""``synset takedown``: withdraw an image everywhere, reversibly."""

from __future__ import annotations

import typer

from synset_builder.cli.common import open_session, print_json, settings
from synset_builder.errors import InvalidInput


def takedown(
    sha256: str | None = typer.Option(None, "--sha256", help="The image's sha256."),
    url: str | None = typer.Option(None, "--url", help="A URL the image was fetched from."),
    creator: str | None = typer.Option(None, "--creator", help="Every image by this creator."),
    reason: str = typer.Option("", "--reason", help="Why (kept on record)."),
    revoke: int | None = typer.Option(None, "--revoke", help="Reverse takedown ID."),
    show: bool = typer.Option(False, "--list", help="List takedowns."),
    include_revoked: bool = typer.Option(False, "--all", help="With --list: revoked ones too."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Remove images from every queue and later export (recorded; --revoke reverses)."""
    from synset_builder.takedown import add_takedown, list_takedowns, revoke_takedown

    given = {k: v for k, v in {"sha256": sha256, "url": url, "creator": creator}.items() if v}
    actions = len(given) + (revoke is not None) + show
    if actions != 1:
        raise InvalidInput(
            "Give exactly one of --sha256, --url, --creator (with --reason), --revoke ID or --list."
        )
    with open_session(settings()) as session:
        if show:
            rows = list_takedowns(session, include_revoked=include_revoked)
            if as_json:
                print_json(rows)
            for row in [] if as_json else rows:
                state = f" revoked {row['revoked_at']}" if row["revoked_at"] else ""
                typer.echo(
                    f"{row['id']}  {row['kind']}={row['value']}  {row['images']} image(s)  "
                    f"{row['reason']}{state}"
                )
            return
        if revoke is not None:
            result = revoke_takedown(session, revoke, reason=reason)
            verb = "Revoked"
        else:
            ((kind, value),) = given.items()
            result = add_takedown(session, kind=kind, value=value, reason=reason)
            verb = "Recorded" if result.created else "Already recorded"
    if as_json:
        print_json(result.__dict__)
        return
    typer.echo(
        f"{verb} takedown {result.id} ({result.kind}={result.value}): {result.images} stored "
        "image(s) matched. Run 'synset verify' to find exports that still hold them."
        if verb != "Revoked"
        else f"{verb} takedown {result.id}: {result.images} image(s) return to the pool."
    )


def register(app: typer.Typer) -> None:
    app.command("takedown")(takedown)
