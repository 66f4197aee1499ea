"""Behind a reverse proxy: whom to believe about the client, and Secure cookies.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only from the proxies
that ``SYNSET_WEB_TRUSTED_PROXIES`` names (uvicorn's ProxyHeadersMiddleware does
the parsing: the client is the first address from the right that is not a trusted
proxy). ``synset serve`` runs uvicorn without its own proxy handling, which by
default believed anyone connecting from 127.0.0.1: with it, a local client could
pose as endless addresses and never meet the per-address login limit.

Cookies get ``Secure`` when the request came over HTTPS, directly or as a trusted
proxy says (``SYNSET_WEB_SECURE_COOKIES`` forces it on or off): a cookie marked
Secure is never sent over plain HTTP, where anyone on the path could copy it.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from synset_builder.config import Settings


class SecureCookies:
    """Add ``Secure`` to every cookie the app sets on an HTTPS request (or always)."""

    def __init__(self, app: ASGIApp, force: bool | None) -> None:
        self.app = app
        self.force = force

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = self.force if self.force is not None else scope.get("scheme") == "https"
        if scope["type"] != "http" or not secure:
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [_secure(h) for h in message["headers"]]}
            await send(message)

        await self.app(scope, receive, send_secure)


def _secure(header: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    name, value = header
    if name.lower() != b"set-cookie" or b"; secure" in value.lower():
        return header
    return name, value + b"; Secure"


def install(app: FastAPI, cfg: Settings) -> None:
    """Add both middlewares; call it after every other middleware (they wrap the rest)."""
    app.add_middleware(SecureCookies, force=cfg.web.secure_cookies)
    if cfg.web.proxy_addresses:
        # Outermost: the scheme and client it sets are what every layer below reads.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=cfg.web.proxy_addresses)
