"""One-shot messages from a write to the page after it ("Saved 24 votes", "Took back
24 votes").

They travel in the signed session cookie, not in the address. An address is
reloaded, bookmarked and typed: ``/task?undone=23`` said "Took back 23 votes" on
every reload, and ``/task?saved=999`` showed a count the server never said. A flash
is written only by the server, after the write it reports, and read once, by the
next page that shows it.
"""

from __future__ import annotations

from starlette.requests import Request

KEY = "flash"


def put(request: Request, **counts: int) -> None:
    """Leave ``counts`` for the next page; a newer write's flash replaces an unread one."""
    request.session[KEY] = counts


def take(request: Request) -> dict[str, int]:
    """The flash left for this page, removed so that a reload does not show it again."""
    got = request.session.pop(KEY, None)
    if not isinstance(got, dict):
        return {}
    return {k: v for k, v in got.items() if isinstance(k, str) and isinstance(v, int)}
