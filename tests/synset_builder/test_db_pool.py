"""The connection pool replaces connections the server dropped while they sat idle."""

from __future__ import annotations

import time

from sqlalchemy import text

from synset_builder.db import session as db_session
from synset_builder.db.session import make_engine
from tests.conftest import DatabaseFactory


def test_an_idle_connection_killed_by_the_server_is_replaced(db_factory: DatabaseFactory) -> None:
    """What a PostgreSQL restart or an idle timeout does to a pooled connection."""
    engine = make_engine(db_factory.migrated("postgresql"), pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with make_engine(db_factory.migrated("postgresql")).connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        time.sleep(db_session.IDLE_PING_SECONDS + 0.2)
        with engine.connect() as conn:  # no error: the dead connection was swapped
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()


def test_a_busy_pool_does_not_ping(db_factory: DatabaseFactory) -> None:
    """Connections back in use within IDLE_PING_SECONDS cost no extra round trip."""
    engine = make_engine(db_factory.migrated("postgresql"), pool_size=1, max_overflow=0)
    pings: list[object] = []
    original = engine.dialect.do_ping
    engine.dialect.do_ping = lambda conn: pings.append(conn) or original(conn)  # type: ignore[method-assign]
    try:
        for _ in range(5):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert pings == []
        time.sleep(db_session.IDLE_PING_SECONDS + 0.2)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_web_app_plans_each_statement_once_on_postgresql(
    db_factory: DatabaseFactory, tmp_path
) -> None:
    """The web app's connections prepare at once and keep generic plans (app._planned_once)."""
    from annotator_web.app import create_app
    from synset_builder.config import Settings

    app = create_app(Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path))
    try:
        with app.state.engine.connect() as conn:
            mode = conn.execute(text("SHOW plan_cache_mode")).scalar_one()
            assert conn.connection.driver_connection.prepare_threshold == 0
        assert mode == "force_generic_plan"
    finally:
        app.state.engine.dispose()


def test_web_app_pool_and_thread_limit_follow_web_threads(tmp_path) -> None:
    """SYNSET_WEB_THREADS sizes both: one connection per thread, no thread without one."""
    import anyio

    from annotator_web.app import create_app
    from synset_builder.config import Settings

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    app = create_app(Settings(database_url=db, data_dir=tmp_path, web_threads=3))
    try:
        assert app.state.engine.pool.size() == 3

        async def tokens_while_serving() -> float:
            async with app.router.lifespan_context(app):
                return anyio.to_thread.current_default_thread_limiter().total_tokens

        assert anyio.run(tokens_while_serving) == 3
    finally:
        app.state.engine.dispose()


def test_api_routes_are_matched_before_the_pages(tmp_path) -> None:
    """The two hot API routes come first in the route table (no page route tried first)."""
    from annotator_web.app import create_app
    from synset_builder.config import Settings

    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path)
    )
    try:
        # OpenAPI lists paths in route order (the login API, from the pages' router,
        # came first before).
        assert list(app.openapi()["paths"])[:2] == ["/api/tasks/next", "/api/votes"]
    finally:
        app.state.engine.dispose()


def test_hot_api_routes_take_one_thread_hop() -> None:
    """FastAPI runs a sync dependency in the thread pool: the fetch and the submit
    resolve only async dependencies, so their one hop is the endpoint itself."""
    import inspect

    from fastapi.routing import APIRoute

    from annotator_web.routes.api import router

    hot = [r for r in router.routes if isinstance(r, APIRoute)
           and r.path in ("/api/tasks/next", "/api/votes")]  # fmt: skip
    assert len(hot) == 2

    def sync_calls(dependant) -> list[str]:  # noqa: ANN001 - FastAPI's internal model
        found = [
            d.call.__name__
            for d in dependant.dependencies
            if not (inspect.iscoroutinefunction(d.call) or inspect.isasyncgenfunction(d.call))
        ]
        return found + [n for d in dependant.dependencies for n in sync_calls(d)]

    for route in hot:
        assert sync_calls(route.dependant) == [], route.path
