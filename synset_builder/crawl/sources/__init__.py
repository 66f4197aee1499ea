"""Image sources: where candidate URLs come from.

Every source answers one question, "page P of the results for query Q of synset
S", with :class:`Hit` records carrying the provenance the candidate row keeps
(URL, licence, creator, landing page, title, rank, query). Sources are picked
from :data:`REGISTRY` by the spec's name (``openverse``, ``urls:FILE``, ...), so
adding one is one module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from synset_builder.config import Settings
from synset_builder.crawl.sources.provenance import LIMITS, clean_landing_url, clean_text, clean_url
from synset_builder.errors import InvalidInput, SynsetError


class SourceError(SynsetError):
    """A search service failed or answered in a shape we do not understand."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        # The whole service is down for us: stop asking it in this run.
        self.unreachable = unreachable


@dataclass(frozen=True)
class SynsetRef:
    """What a source needs to know about a synset to search for it."""

    wnid: str
    name: str
    lemmas: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """One search result: a URL to download and everything known about it.

    Every field is cleaned as the hit is made (:mod:`synset_builder.crawl.sources.provenance`),
    whichever source made it: what is fetched, remembered and stored is the same text.
    """

    url: str
    source: str
    query: str | None
    rank: int
    license: str | None = None
    creator: str | None = None
    landing_url: str | None = None
    title: str | None = None
    # Set by ``dir:``: the file is read (and registered) in place, never copied.
    local_path: str | None = None

    def __post_init__(self) -> None:
        # A frozen dataclass sets its own fields this way; values are only ever cleaned.
        clean = {
            "url": clean_url(self.url),
            "query": clean_text(self.query, LIMITS["query"]),
            "license": clean_text(self.license, LIMITS["license"]),
            "creator": clean_text(self.creator, LIMITS["creator"]),
            "landing_url": clean_landing_url(self.landing_url),
            "title": clean_text(self.title, LIMITS["title"]),
        }
        for name, value in clean.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit] = field(default_factory=list)
    # The source has nothing after this page.
    last: bool = False


class Source(Protocol):
    """A searchable collection of images."""

    #: Stored on every candidate (``openverse``, ``urls``, ...).
    name: str
    #: The spec it was made from; finished pages are remembered under it.
    spec: str
    #: False for lists (``urls:``, ``dir:``) that are the same whatever the query.
    uses_queries: bool
    page_size: int

    def search(self, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
        """Page ``page`` (1-based) of the hits for ``query``."""
        ...


SourceFactory = Callable[[str | None, Settings], Source]


def _registry() -> dict[str, SourceFactory]:
    from synset_builder.crawl.sources import dir as dir_source
    from synset_builder.crawl.sources import flickr, openverse, urls, wikimedia

    return {
        "openverse": openverse.OpenverseSource,
        "wikimedia": wikimedia.WikimediaSource,
        "flickr": flickr.FlickrSource,
        "urls": urls.UrlListSource,
        "dir": dir_source.DirSource,
    }


REGISTRY_NAMES = ("openverse", "wikimedia", "flickr", "urls", "dir")


def make_source(spec: str, settings: Settings) -> Source:
    """Build the source a ``--source`` spec names, or say in one sentence what is wrong."""
    name, _, arg = spec.partition(":")
    registry = _registry()
    if name not in registry:
        raise InvalidInput(
            f"Unknown source {spec!r}; use one of {', '.join(REGISTRY_NAMES)} "
            "(urls:FILE and dir:PATH take an argument)."
        )
    return registry[name](arg or None, settings)
