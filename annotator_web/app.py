"""The annotator web app: ``create_app(settings)`` builds everything it needs.

No module-level state: the engine, the session factory, the templates and the
signing secret live on ``app.state``, so tests can run several apps side by side
against different databases, and ``synset serve`` can run several workers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annotator_web.auth import csrf_token, secret_key
from annotator_web.deps import LoginRequired
from annotator_web.json_guard import StrictJson
from annotator_web.proxy import install as install_proxy_handling
from annotator_web.routes import api, auth_pages, dashboard, images, review, task_pages
from annotator_web.serving.goals import GoalCache
from annotator_web.serving.statements import build_statements
from synset_builder import __version__
from synset_builder.config import Settings, load_settings
from synset_builder.consensus.refit import AutoRefit
from synset_builder.db.session import make_engine, session_factory

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "synset_session"
SESSION_DAYS = 14


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # The framework may turn our exception into its own error page; answer 413.
            if not exceeded:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._refuse(scope, receive, send)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps({"detail": f"Request body over {self.limit} bytes."}).encode()
        response = Response(body, status_code=413, media_type="application/json")
        await response(scope, receive, send)


# A browser's words for the router's bare "Not Found" and "Method Not Allowed".
PAGE_ERRORS = {
    403: ("Not allowed", "Your account cannot open this page."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed here", "This page cannot be used that way; go back and try again."),
    415: ("Not understood", "The page sent something this address does not take."),
    429: ("Too many requests", "Wait a little and try again."),
}


def _page_error(exc: StarletteHTTPException) -> tuple[str, str]:
    """(title, message) of a browser's error page: the route's own words where it gave any."""
    title, plain = PAGE_ERRORS.get(exc.status_code, (f"Error {exc.status_code}", ""))
    bare = exc.detail == HTTPStatus(exc.status_code).phrase
    return title, plain if bare and plain else str(exc.detail)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _planned_once(database_url: str) -> dict[str, object]:
    """PostgreSQL: prepare each statement at once and keep one generic plan for it.

    Planning the lease query (a dozen anti-joins: the pool, the annotator's own
    answers, other people's leases) takes longer than running it, and so
    does the probe of a synset. By default each connection planned each statement at
    least ten times (five runs before psycopg prepares it, five custom plans before
    the server considers a generic one) and kept planning those two on every call,
    which under bench/web_load.py was about one core of planning (pg_stat_statements).
    The hot statements are written for generic plans (annotator_web/serving/):
    the lease query walks the serve-key index from a parameter, lists are arrays,
    limits are parameters. An ANALYZE (autovacuum's, after a table filled) makes
    every connection plan again with the new statistics.

    Only those statements: a curator's ad hoc query planned once without its values
    can be off by orders of magnitude (the funnel's clean count expected 1 row and
    nested-looped over a million). Curator reads switch their transaction back to
    the planner's normal mode first (annotator_web/stats.py, ``planner_default``).
    """
    if make_url(database_url).get_backend_name() != "postgresql":
        return {}
    return {
        "connect_args": {
            "connect_timeout": 5,
            "prepare_threshold": 0,
            "options": "-c plan_cache_mode=force_generic_plan",
        }
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    cfg = settings or load_settings()
    engine = _engine(cfg)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = cfg.web.threads
        yield
        engine.dispose()

    # FastAPI's /docs and /redoc load their scripts from a CDN: a blank page offline or
    # behind a strict firewall. fastapi-offline serves the same pages from files it bundles.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="synset-builder annotator",
        version=__version__,
        description="Vote on candidate images; curate the pool. Authenticate with "
        "POST /api/session; the session cookie carries the login.",
    )
    _set_state(app, cfg, engine)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(cfg),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_DAYS * 86400,
        same_site="lax",
        https_only=False,
    )
    app.add_middleware(StrictJson)  # inside BodyLimit: it reads only bodies under the limit
    app.add_middleware(BodyLimit, limit=cfg.web.max_body_bytes)
    install_proxy_handling(app, cfg)  # outermost: client address, scheme, Secure cookies
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # The JSON API first: its two hot routes are matched before every page route.
    for module in (api, auth_pages, task_pages, dashboard, images, review):
        app.include_router(module.router)
    _handle_errors(app)
    return app


def _engine(cfg: Settings) -> Engine:
    """Sync routes run in a bounded thread pool with one connection per thread (plus a
    few for streamed downloads): requests queue for a thread, never time out on the pool."""
    return make_engine(
        cfg.database_url,
        pool_size=cfg.web.threads,
        max_overflow=4,
        pool_timeout=120,
        **_planned_once(cfg.database_url),
    )


def _set_state(app: FastAPI, cfg: Settings, engine: Engine) -> None:
    """What the routes find on ``app.state``: built here once, never at module level."""
    app.state.settings = cfg
    app.state.engine = engine
    app.state.sessionmaker = session_factory(engine)
    # The request path's statements for this backend (annotator_web/serving/statements.py).
    app.state.statements = build_statements(engine)
    # The submit path counts votes on it (annotator_web/serving/submit.py) and starts a refit.
    app.state.refits = AutoRefit(cfg, engine)
    app.state.sessionmaker.configure(info={"refits": app.state.refits})
    app.state.goals = GoalCache(cfg.web.goal_recheck_seconds)
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescape is on for .html
    templates.env.globals["csrf_token"] = csrf_token
    app.state.templates = templates


def _message_page(
    request: Request, title: str, message: str, status: int, headers: Mapping[str, str] | None
) -> Response:
    return request.app.state.templates.TemplateResponse(
        request,
        "message.html",
        {"title": title, "message": message, "user": getattr(request.state, "viewer", None)},
        status_code=status,
        headers=headers,
    )


def _handle_errors(app: FastAPI) -> None:
    """One answer per kind of failure: a page for a browser, JSON for the API."""

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    # Starlette's class: the router's own 404 and 405 are not FastAPI's HTTPException.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_html(request) and exc.status_code in (403, 404, 405, 415, 429):
            title, message = _page_error(exc)
            return _message_page(request, title, message, exc.status_code, exc.headers)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        message = "Invalid request: " + "; ".join(problems)
        if _wants_html(request):  # a typo in an address or an old bookmark: a page
            where = ", ".join(sorted({str(e.get("loc", ("", "?"))[-1]) for e in exc.errors()}))
            return _message_page(request, "Address not understood",
                                 f"This address has a value the page cannot use ({where}); "
                                 "go back and use the page's own links.", 422, None)  # fmt: skip
        return JSONResponse({"detail": message, "errors": jsonable(exc.errors())}, status_code=422)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(request: Request, exc: Exception) -> Response:
        # A lost or refused connection: answer at once; the pool reconnects later.
        message = "The database is unavailable; try again shortly."
        headers = {"Retry-After": "5"}
        if _wants_html(request):
            return _message_page(request, "Service unavailable", message, 503, headers)
        return JSONResponse({"detail": message}, status_code=503, headers=headers)

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> Response:
        # A value the column cannot hold (NUL in text, a number out of range): the caller's.
        return JSONResponse({"detail": "Invalid request: a value is out of range."}, 422)


def jsonable(errors: object) -> object:
    return json.loads(json.dumps(errors, default=str))


def factory() -> FastAPI:
    """For ``uvicorn --factory annotator_web.app:factory`` (settings from the environment)."""
    return create_app(load_settings())
