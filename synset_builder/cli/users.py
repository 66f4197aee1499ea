"""``synset users add|list|disable|enable|reports``: accounts for the web app.

Every change to an account here ends its open sessions (a new password, a role, a
disable or an enable), so a cookie copied before cannot outlive the change. Heavy
imports (the accounts module, SQLAlchemy, argon2) stay inside the commands, so
``synset --help`` does not pay for them.
"""

from __future__ import annotations

import sys

import typer

from synset_builder.cli.common import open_session, print_json, settings
from synset_builder.errors import InvalidInput

users_app = typer.Typer(help="Accounts of annotators, curators and admins.")


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="The login name."),
    role: str = typer.Option("annotator", "--role", help="annotator, curator or admin."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    reset: bool = typer.Option(
        False, "--reset", help="The account exists: set its role and password (logs it out)."
    ),
) -> None:
    """Create an account (at least 8 characters of password); --reset to change one."""
    from synset_builder.accounts import ROLES, add_user, check_username

    check_username(name)
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_session(settings()) as session:
        user = add_user(session, name, role, password, reset=reset)
        done = "was reset; its sessions ended" if reset else "is ready"
        typer.echo(f"Account {user.username!r} ({user.role}) {done}.")


@users_app.command("list")
def list_users(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list for scripts."),
) -> None:
    """Every account: role, enabled, crowd id, votes, open reports, last seen."""
    from synset_builder.accounts import account_rows

    with open_session(settings()) as session:
        rows = account_rows(session)
    if as_json:
        print_json([row.as_json() for row in rows])
        return
    if not rows:
        typer.echo("No accounts yet; add one with 'synset users add NAME'.")
        return
    header = ["name", "role", "enabled", "crowd id", "votes", "reports", "last seen"]
    table = [
        [
            r.name,
            r.role,
            "yes" if r.enabled else "no",
            r.crowd_id or "-",
            str(r.votes),
            str(r.open_reports),
            r.last_seen.strftime("%Y-%m-%d %H:%M UTC") if r.last_seen else "never",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


@users_app.command("disable")
def disable(name: str = typer.Argument(..., help="The login name.")) -> None:
    """Switch an account off: it is logged out everywhere and cannot log in; votes stay."""
    _set_disabled(name, True, new_browser=False)


@users_app.command("enable")
def enable(
    name: str = typer.Argument(..., help="The login name."),
    new_browser: bool = typer.Option(
        False,
        "--new-browser",
        help="Crowd account: let its worker id join once more from any browser.",
    ),
) -> None:
    """Switch an account on again; sessions from before stay ended (log in afresh)."""
    _set_disabled(name, False, new_browser=new_browser)


def _set_disabled(name: str, disabled: bool, *, new_browser: bool) -> None:
    from synset_builder.accounts import find_user, set_disabled

    with open_session(settings()) as session:
        user = find_user(session, name)
        set_disabled(session, user, disabled)
        if new_browser:
            user.join_secret = None
    state = "disabled; its sessions ended" if disabled else "enabled"
    typer.echo(f"Account {name!r} is {state}.")


@users_app.command("reports")
def reports(
    name: str = typer.Argument(..., help="The login name of the reporter."),
    dismiss: bool = typer.Option(
        False, "--dismiss", help="Dismiss all its open reports: the images go back in service."
    ),
) -> None:
    """The open reports one account filed; --dismiss answers a flood of them at once."""
    from annotator_web.reports import dismiss_reports_by, open_reports_by
    from synset_builder.accounts import find_user

    with open_session(settings()) as session:
        user = find_user(session, name)
        rows = open_reports_by(session, user.id)
        if dismiss:
            count = dismiss_reports_by(session, user.id)
            typer.echo(f"Dismissed {count} open report(s) by {name!r}; their images are back.")
            return
    if not rows:
        typer.echo(f"{name!r} has no open reports.")
        return
    typer.echo(f"{len(rows)} open report(s) by {name!r} (dismiss them all with --dismiss):")
    for report_id, image_id, reason, filed in rows:
        typer.echo(f"  report {report_id}  image {image_id}  {reason}  {filed:%Y-%m-%d %H:%M}")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
