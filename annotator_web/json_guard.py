"""Refuse JSON bodies that hold ``NaN``, ``Infinity`` or a number too large for a float.

None of these is JSON (RFC 8259), but Python's parser, which FastAPI uses, accepts
them and yields non-finite floats. Those then reach the 422 answer that quotes the
bad input, which cannot be written as JSON, and every such request ended in a 500
with a traceback, the login form's included. This middleware answers 422 before any
route runs, for every route at once, so a new route cannot forget it.

The body is read here and handed on unchanged. The check parses it with hooks that
only run on the rare tokens in question (``parse_constant`` for NaN and Infinity,
``parse_float`` for numbers with a fraction or exponent), so a vote page costs one
more parse of a small body. A body that is not valid JSON at all is passed on: the
framework's own 422 explains it.
"""

from __future__ import annotations

import json
import math

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MESSAGE = "Invalid request: NaN, Infinity and numbers out of a float's range are not JSON."


class NonFinite(ValueError):
    pass


def _refuse_constant(token: str) -> float:
    raise NonFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise NonFinite(token)
    return value


def non_finite(body: bytes) -> bool:
    """Whether ``body`` parses as JSON only by admitting a non-finite number."""
    try:
        json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except NonFinite:
        return True
    except (ValueError, RecursionError):
        return False  # not JSON at all (or too deep): the framework answers it
    return False


def _json_body(scope: Scope) -> bool:
    """FastAPI parses a body as JSON when it says so, and when it names no type."""
    if scope["method"] in ("GET", "HEAD", "OPTIONS"):
        return False
    kind = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip()
    return not kind or kind.lower().endswith(b"json")


class StrictJson:
    """ASGI middleware: 422 for a JSON body with a non-finite number, on any route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _json_body(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if non_finite(body):
            await JSONResponse({"detail": MESSAGE}, status_code=422)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
