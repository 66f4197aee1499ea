"""The ``synset`` command line.

Each stage contributes one module in this package with a ``register(app)``
function; modules are found by name so stages can land independently. User errors
(:class:`SynsetError`, an unreachable database, a full disk) become one line on
stderr and a non-zero exit, never a traceback; usage errors get click's usage
line, its hint and one error line, exit 2.

One import rule keeps every command quick to start
--------------------------------------------------
Curators run many short commands (``status``, ``hierarchy show``, ``users list``)
and scripts call them in loops, so no command may pay for another's libraries.
``synset --help`` imports every module of this package to list the commands,
hence in every one of them:

* at the top, import only the standard library, ``typer``,
  ``synset_builder.errors`` and ``synset_builder.cli.common`` (which keeps the
  same rule);
* import everything else (the stage it drives, the settings, SQLAlchemy, numpy,
  ...) inside the command function, or the helper, that uses it;
* names needed only in annotations go under ``if TYPE_CHECKING:``; every module
  starts with ``from __future__ import annotations``, so they are never
  evaluated. The parameters of command functions are the exception: typer reads
  their annotations, so they stay builtins and ``Path``.

``tests/synset_builder/test_cli_startup.py`` imports this package in a fresh
interpreter and fails if a heavy library (numpy, SQLAlchemy, Alembic, ...) came
with it, and checks that ``synset --help`` still lists every command.
"""

from __future__ import annotations

import errno
import os
import pkgutil
import sys
from importlib import import_module
from typing import Any, TextIO

import typer

from synset_builder import __version__
from synset_builder.cli.common import writing_to
from synset_builder.errors import DatabaseUnavailable, SynsetError, os_error_line

app = typer.Typer(
    name="synset",
    help="Build ImageNet-style datasets: hierarchy, crawl, clean, vote, consensus, export, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich markup would eat bracketed words ("[settings: 0.95]") and
    # print a <bool> placeholder after every flag; every sub-command inherits this.
    rich_markup_mode=None,
)

# Usage errors are click's; newer typers vendor click (typer._click), older ones
# use it as it is: the class is found from typer's own public BadParameter.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


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
    "audit", "export", "train", "takedown", "status", "config",
)  # fmt: skip
_modules = [m.name for m in pkgutil.iter_modules(__path__) if m.name not in ("common",)]
for _name in sorted(_modules, key=lambda n: (PIPELINE.index(n) if n in PIPELINE else 99, n)):
    if not _name.startswith("_"):
        import_module(f"{__name__}.{_name}").register(app)


class _NamedStdout:
    """sys.stdout, whose write errors say "standard output" (they name no file).

    ``synset status --json > /full/disk/status.json`` fails inside ``typer.echo``
    with an OSError that has no file name; this names the stream for the one line.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        with writing_to("standard output"):
            return self.stream.write(text)

    def flush(self) -> None:
        with writing_to("standard output"):
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _silence_stdout() -> None:
    """After stdout failed, stop the interpreter's exit from failing on it again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        pass


def _database_error_line(exc: Exception) -> str | None:
    """The one line for a database error, or None when ``exc`` is not one.

    Looked up in ``sys.modules``: a command that never imported SQLAlchemy or
    Alembic cannot have raised their errors, and importing them here would cost
    every command their start-up time.
    """
    alembic_util = sys.modules.get("alembic.util")
    if alembic_util is not None and isinstance(exc, alembic_util.CommandError):
        return f"error: the database migrations cannot run: {exc}"
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return f"error: database error: {reason}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn user errors into one line."""
    command = typer.main.get_command(app)
    real_stdout, sys.stdout = sys.stdout, _NamedStdout(sys.stdout)  # type: ignore[assignment]
    try:
        result = command.main(args=argv, prog_name="synset", standalone_mode=False)
        sys.stdout.flush()  # a full disk behind stdout surfaces here, not at exit
        # typer.Exit(code) comes back as the code; a command's own return value is not one.
        return result if type(result) is int else 0
    except _ClickException as exc:
        exc.show()
        return exc.exit_code
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except SynsetError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("Interrupted; run the command again to continue where it stopped.", err=True)
        return 130
    except OSError as exc:
        if exc.filename == "standard output":
            _silence_stdout()
        if exc.errno != errno.EPIPE:  # the reader left (`| head`): nothing to tell
            typer.echo(os_error_line(exc), err=True)
        return 1
    except Exception as exc:
        line = _database_error_line(exc)
        if line is None:
            raise
        typer.echo(line, err=True)
        return DatabaseUnavailable.exit_code
    finally:
        sys.stdout = real_stdout
