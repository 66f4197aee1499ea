"""The ``web`` fixture: a seeded database of real photos and the app on it (both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.annotator_web.webtools import Web, make_web


@pytest.fixture
def web(settings, photos) -> Iterator[Web]:
    w = make_web(settings, photos, n=12, web_grid_size=5)
    yield w
    w.close()
