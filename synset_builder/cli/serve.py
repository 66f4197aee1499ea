"""``synset serve``: the annotator web app under uvicorn."""

from __future__ import annotations

import copy
import sys

import typer

from synset_builder.cli.common import engine_for, settings


def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on (SYNSET_WEB_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (SYNSET_WEB_PORT)."),
    workers: int = typer.Option(None, "--workers", help="Worker processes (SYNSET_WEB_WORKERS)."),
    access_log: bool = typer.Option(
        False,
        "--access-log",
        help="Log every request (address, method, path, status) on stderr, e.g. to see "
        "refused logins (401), forbidden pages (403) and throttling (429).",
    ),
) -> None:
    """Serve the voting pages, the curator dashboard and the JSON API."""
    import uvicorn

    from annotator_web.auth import secret_key

    cfg = settings()
    engine_for(cfg).dispose()  # fail in one line now, not in every worker later
    secret_key(cfg)  # created once here, so every worker signs with the same key
    host = host or cfg.web.host
    port = port or cfg.web.port
    typer.echo(f"Annotator app: http://{host}:{port}/  (accounts: synset users add NAME)")
    sys.stdout.flush()
    # uvicorn writes access lines to stdout; a log of requests belongs with the others.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    uvicorn.run(
        "annotator_web.app:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers or cfg.web.workers,
        # Quiet by default (a line per request costs a busy server); uvicorn's access
        # lines are at level info.
        log_level="info" if access_log else "warning",
        access_log=access_log,
        log_config=log_config,
        # The app believes X-Forwarded-* only from SYNSET_WEB_TRUSTED_PROXIES
        # (annotator_web/proxy.py); uvicorn's own handling trusts 127.0.0.1 by default.
        proxy_headers=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
