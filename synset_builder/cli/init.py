"""``synset init``: create or upgrade the schema (Alembic ``upgrade head``)."""

from __future__ import annotations

import typer

from synset_builder.cli.common import engine_for, settings


def init() -> None:
    """Create or upgrade the database schema and the data folder."""
    from synset_builder.db import migrate
    from synset_builder.db.session import describe

    cfg = settings()
    cfg.ensure_data_dir()
    engine = engine_for(cfg, require_schema=False)
    before = migrate.current_revision(engine)
    engine.dispose()
    migrate.upgrade(cfg.database_url)
    head = migrate.head_revision()
    where = describe(cfg.database_url)
    if before == head:
        typer.echo(f"Schema of {where} is up to date (revision {head}).")
    else:
        typer.echo(f"Schema of {where} upgraded from {before or 'empty'} to {head}.")
    typer.echo(f"Data folder: {cfg.data_dir.resolve()}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
