"""The write task of ``synset crawl --cluster`` run twice for one unit.

Dask runs a task again when the worker holding its result is lost, and a task of a
killed driver may still commit while the crawl is run again; either way a unit can
be written twice. The second write must report what the first wrote and add nothing.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from synset_builder.config import Settings
from synset_builder.crawl.cluster import write_unit
from synset_builder.crawl.fetch import Failed, FetchConfig, Fetcher
from synset_builder.crawl.records import PageDone
from synset_builder.crawl.run import Unit
from synset_builder.crawl.sources import Hit
from synset_builder.db.models import Candidate, CrawlPage, FetchFailure, Image
from synset_builder.db.session import make_engine, session_scope
from tests.crawl_support import add_target


def _counts(settings: Settings) -> tuple[int, ...]:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as s:
            return tuple(
                s.scalar(select(func.count()).select_from(table)) or 0
                for table in (Image, Candidate, FetchFailure, CrawlPage)
            )
    finally:
        engine.dispose()


def test_a_unit_written_twice_is_written_once(settings: Settings, photos: list[Path]) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        synset_id = add_target(session, "n02084071", "dog").id
    engine.dispose()
    hits = [  # two files, the first one again under another URL
        Hit(photos[0].as_uri(), "dir", None, 1, local_path=str(photos[0])),
        Hit(photos[1].as_uri(), "dir", None, 2, local_path=str(photos[1])),
        Hit(f"{photos[0].as_uri()}?copy", "dir", None, 3, local_path=str(photos[0])),
    ]
    fetcher = Fetcher(FetchConfig(user_agent="test/1"), settings.ensure_data_dir())
    outcomes = [fetcher.fetch(h) for h in hits]
    missing = Hit("http://127.0.0.1:9/gone.jpg", "urls", None, 4)
    outcomes.append(Failed(missing, "http_404", "Not Found", 1))
    unit = Unit(synset_id, (*hits, missing), PageDone(synset_id, "dir:x", "", 1, 4, True))

    first = write_unit(settings.database_url, unit, outcomes, None, False)
    after_first = _counts(settings)
    again = write_unit(settings.database_url, unit, outcomes, first, False)

    assert [s for s, _ in first] == ["new", "new", "duplicate", "failed"]
    assert again == first
    assert after_first == (2, 2, 1, 1)
    assert _counts(settings) == after_first
