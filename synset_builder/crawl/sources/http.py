"""HTTP for search APIs: an honest User-Agent, 429 and 5xx handled politely.

Image downloads go through :mod:`synset_builder.crawl.fetch` instead, which adds the
private-address guard and byte caps; API roots are configured by the curator
(and point at 127.0.0.1 in tests), so they are trusted.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from synset_builder import __version__
from synset_builder.config import Settings
from synset_builder.crawl.fetch import retry_after
from synset_builder.crawl.sources import SourceError

MAX_TRIES = 4


def user_agent(settings: Settings) -> str:
    """Wikimedia's policy asks for a name, a version and a way to reach the operator."""
    return f"synset-builder/{__version__} (+{settings.contact})"


def api_session(settings: Settings) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent(settings)
    session.headers["Accept"] = "application/json"
    return session


def get_json(
    session: requests.Session,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Any:
    """GET a JSON document, waiting out 429s and retrying 5xx with back-off."""
    delay = 1.0
    for attempt in range(1, MAX_TRIES + 1):
        try:
            response = session.get(url, params=params, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            # A refused connection or an unknown name will not heal in seconds: fail fast.
            if attempt == MAX_TRIES or not isinstance(exc, requests.Timeout):
                raise SourceError(
                    f"The search service at {url} cannot be reached ({type(exc).__name__}).",
                    unreachable=True,
                ) from exc
            time.sleep(delay)
            delay *= 2
            continue
        if response.status_code == 429 or response.status_code >= 500:
            if attempt == MAX_TRIES:
                raise SourceError(
                    f"The search service at {url} answered HTTP {response.status_code} "
                    f"{MAX_TRIES} times."
                )
            time.sleep(retry_after(response.headers, delay))
            delay *= 2
            continue
        if response.status_code >= 400:
            raise SourceError(f"The search service at {url} answered HTTP {response.status_code}.")
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(f"The search service at {url} did not answer JSON.") from exc
    raise AssertionError("unreachable")
