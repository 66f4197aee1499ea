"""PostgreSQL plans this project's server-side cursors for every row, not the first 10%.

Every cursor here is read to its end (export selection, ``synset consensus``'s pass,
votes export, verify). Under PostgreSQL's default ``cursor_tuple_fraction`` (0.1) the
export's stream of 800,000 accepted images at ILSVRC scale got a fast-start plan
that ran about a second per thousand rows; planned for every row it takes seconds.
These check that every engine the project makes, the CLI's and the web app's (which
passes connection options of its own), carries the setting.
"""

from __future__ import annotations

from sqlalchemy import text

from annotator_web.app import _planned_once
from synset_builder.db.session import make_engine
from tests.conftest import DatabaseFactory

SHOW = text("SHOW cursor_tuple_fraction")


def test_cli_engines_plan_cursors_for_every_row(db_factory: DatabaseFactory) -> None:
    engine = make_engine(db_factory.migrated("postgresql"))
    try:
        with engine.connect() as conn:
            assert conn.scalar(SHOW) == "1"
    finally:
        engine.dispose()


def test_the_web_apps_options_keep_both_settings(db_factory: DatabaseFactory) -> None:
    url = db_factory.migrated("postgresql")
    engine = make_engine(url, **_planned_once(url))
    try:
        with engine.connect() as conn:
            assert conn.scalar(SHOW) == "1"
            assert conn.scalar(text("SHOW plan_cache_mode")) == "force_generic_plan"
    finally:
        engine.dispose()


def test_a_callers_own_fraction_is_left_alone(db_factory: DatabaseFactory) -> None:
    engine = make_engine(
        db_factory.migrated("postgresql"),
        connect_args={"options": "-c cursor_tuple_fraction=0.5"},
    )
    try:
        with engine.connect() as conn:
            assert conn.scalar(SHOW) == "0.5"
    finally:
        engine.dispose()
