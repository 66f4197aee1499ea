"""What every command needs: settings, a checked engine, a session, output helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from synset_builder.config import Settings, load_settings
from synset_builder.db import migrate
from synset_builder.db.session import check_connection, make_engine, session_scope
from synset_builder.errors import DatabaseUnavailable


def settings() -> Settings:
    return load_settings()


def engine_for(cfg: Settings, *, require_schema: bool = True) -> Engine:
    """An engine that is known to answer, and (by default) to hold our schema."""
    engine = make_engine(cfg.database_url)
    check_connection(engine)
    if require_schema and migrate.current_revision(engine) is None:
        raise DatabaseUnavailable(
            f"The database {engine.url.render_as_string(hide_password=True)} has no schema "
            "yet; run 'synset init' first."
        )
    return engine


@contextmanager
def open_session(cfg: Settings) -> Iterator[Session]:
    engine = engine_for(cfg)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
