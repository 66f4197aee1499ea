"""The ``synset`` command line.

Each stage contributes one module in this package with a ``register(app)``
function; modules are found by name so stages can land independently. User errors
(:class:`SynsetError`, an unreachable database) become one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer
from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError

from synset_builder import __version__
from synset_builder.errors import DatabaseUnavailable, SynsetError

app = typer.Typer(
    name="synset",
    help="Build ImageNet-style datasets: hierarchy, crawl, clean, vote, consensus, export, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synset {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Settings come from SYNSET_* variables and ./synset.toml (see README)."""


# `synset --help` lists commands in pipeline order; modules not named here come last.
PIPELINE = (
    "init", "hierarchy", "crawl", "clean", "users", "gold", "serve", "votes", "consensus",
    "export", "train", "takedown", "status",
)  # fmt: skip
_modules = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in ("common",)]
for _name in sorted(_modules, key=lambda n: (PIPELINE.index(n) if n in PIPELINE else 99, n)):
    if not _name.startswith("_"):
        importlib.import_module(f"{__name__}.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn user errors into one line."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="synset", standalone_mode=False)
    except click.exceptions.Abort:
        typer.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SynsetError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except CommandError as exc:
        typer.echo(f"error: the database migrations cannot run: {exc}", err=True)
        return DatabaseUnavailable.exit_code
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        typer.echo(f"error: database error: {reason}", err=True)
        return DatabaseUnavailable.exit_code
    except KeyboardInterrupt:
        typer.echo("Interrupted; run the command again to continue where it stopped.", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
