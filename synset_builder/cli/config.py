"""``synset config``: every setting, its ``SYNSET_*`` name, default, value and meaning."""

from __future__ import annotations

import textwrap

import typer

from synset_builder.cli.common import print_json, settings


def config(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list for scripts."),
    changed: bool = typer.Option(
        False, "--changed", help="Only the settings whose value is not the default."
    ),
) -> None:
    """List every setting: its SYNSET_* variable (or synset.toml key), default and value.

    The variable's name without SYNSET_, in lower case, is its key in synset.toml and
    for load_settings(); values set in the environment win over synset.toml.
    """
    from synset_builder.config.listing import rows

    listed = [r for r in rows(settings()) if not changed or r.value != r.default]
    if as_json:
        print_json([r.as_json() for r in listed])
        return
    if changed and not listed:
        typer.echo("Every setting has its default value.")
    for row in listed:
        now = "" if row.value == row.default else f"  (now {row.value})"
        typer.echo(f"{row.env} = {row.default}{now}")
        for line in textwrap.wrap(row.description, 76):
            typer.echo(f"    {line}")


def register(app: typer.Typer) -> None:
    app.command("config")(config)
