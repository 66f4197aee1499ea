"""``synset users add NAME --role ROLE [--password-stdin]``: accounts for the web app."""

from __future__ import annotations

import sys

import typer

from synset_builder.accounts import ROLES, add_user
from synset_builder.cli.common import open_session, settings
from synset_builder.errors import InvalidInput

users_app = typer.Typer(help="Accounts of annotators, curators and admins.")


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="The login name."),
    role: str = typer.Option("annotator", "--role", help="annotator, curator or admin."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Create an account (or reset its role and password); at least 8 characters."""
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_session(settings()) as session:
        user = add_user(session, name, role, password)
        typer.echo(f"Account {user.username!r} ({user.role}) is ready.")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
