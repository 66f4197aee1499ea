"""``synset serve``: the annotator web app under uvicorn."""

from __future__ import annotations

import sys

import typer

from synset_builder.cli.common import engine_for, settings


def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on (SYNSET_WEB_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (SYNSET_WEB_PORT)."),
    workers: int = typer.Option(None, "--workers", help="Worker processes (SYNSET_WEB_WORKERS)."),
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
    uvicorn.run(
        "annotator_web.app:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers or cfg.web.workers,
        log_level="warning",
        # The app believes X-Forwarded-* only from SYNSET_WEB_TRUSTED_PROXIES
        # (annotator_web/proxy.py); uvicorn's own handling trusts 127.0.0.1 by default.
        proxy_headers=False,
    )


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
