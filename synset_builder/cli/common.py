"""What every command needs: settings, a checked engine, a session, output helpers.

Every command module imports this one at its top, so it follows the package's
import rule strictly (see ``synset_builder/cli/__init__.py``): the settings,
SQLAlchemy and Alembic are imported inside the functions, when a command that
touches the database actually runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    import click
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from synset_builder.config import Settings


# A setting's default in an option's help: "{setting:consensus.threshold}", filled in
# from the settings models when the help is shown (importing them at start-up would
# cost every command pydantic).
SETTING_DEFAULT = re.compile(r"\{setting:(\w+)\.(\w+)\}")


def fill_setting_defaults(command: click.Command) -> None:
    """Put the settings' defaults into the help of ``command``'s options."""
    params = [p for p in command.params if SETTING_DEFAULT.search(getattr(p, "help", "") or "")]
    if not params:
        return
    from synset_builder.config.listing import default_of

    for param in params:
        param.help = SETTING_DEFAULT.sub(lambda m: default_of(m[1], m[2]), param.help)  # type: ignore[attr-defined]


class SettingsHelp(TyperCommand):
    """A command whose options' help names settings' defaults (``{setting:...}``)."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        fill_setting_defaults(self)
        super().format_help(ctx, formatter)


class SettingsHelpGroup(TyperGroup):
    """The same for a group whose callback has such options (``synset consensus``)."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        fill_setting_defaults(self)
        super().format_help(ctx, formatter)


def settings() -> Settings:
    from synset_builder.config import load_settings

    return load_settings()


def engine_for(cfg: Settings, *, require_schema: bool = True) -> Engine:
    """An engine that is known to answer, and (by default) to hold our schema."""
    from synset_builder.db.session import check_connection, make_engine
    from synset_builder.errors import DatabaseUnavailable

    engine = make_engine(cfg.database_url)
    check_connection(engine)
    if require_schema and not _has_schema(engine):
        raise DatabaseUnavailable(
            f"The database {engine.url.render_as_string(hide_password=True)} has no schema "
            "yet; run 'synset init' first."
        )
    return engine


def _has_schema(engine: Engine) -> bool:
    """Whether ``synset init`` has run: Alembic's version table holds a revision.

    Read with plain SQL rather than Alembic's MigrationContext: importing Alembic
    (and the Mako and Pygments it brings) would cost every command that opens the
    database more than the command's own work; ``synset init`` still asks Alembic.
    """
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        return conn.execute(text("SELECT version_num FROM alembic_version")).first() is not None


@contextmanager
def open_session(cfg: Settings) -> Iterator[Session]:
    from synset_builder.db.session import session_scope

    engine = engine_for(cfg)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


@contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """Name PATH in an OSError raised inside that names no file itself.

    ``write()`` and ``flush()`` failures (a full disk: ENOSPC) carry no file name,
    yet the one line the user reads must say where the write failed; the command
    knows the folder it writes to, so it lends that name.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
