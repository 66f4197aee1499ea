"""Flickr (``flickr.photos.search``): needs ``SYNSET_FLICKR_KEY``.

Only openly licensed photos are asked for (the licence filter), with safe search
on; the licence id is stored by name so an export's datasheet can cite it.
"""

from __future__ import annotations

from synset_builder.config import Settings
from synset_builder.crawl.sources import Hit, SearchPage, SourceError, SynsetRef
from synset_builder.crawl.sources.http import api_session, get_json
from synset_builder.errors import ConfigError

PAGE_SIZE = 100
# flickr.photos.licenses.getInfo: the Creative Commons, public domain and CC0 ids.
LICENSES = {
    "1": "cc-by-nc-sa 2.0",
    "2": "cc-by-nc 2.0",
    "3": "cc-by-nc-nd 2.0",
    "4": "cc-by 2.0",
    "5": "cc-by-sa 2.0",
    "6": "cc-by-nd 2.0",
    "7": "no known copyright restrictions",
    "8": "united states government work",
    "9": "cc0 1.0",
    "10": "pdm 1.0",
}
SIZES = ("url_l", "url_c", "url_z", "url_o")


class FlickrSource:
    name = "flickr"
    uses_queries = True
    page_size = PAGE_SIZE

    def __init__(self, arg: str | None, settings: Settings) -> None:
        if not settings.crawl.flickr_key:
            raise ConfigError("The flickr source needs an API key in SYNSET_FLICKR_KEY.")
        self.spec = "flickr"
        self.api = settings.crawl.flickr_url
        self.key = settings.crawl.flickr_key
        self.session = api_session(settings)

    def search(self, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
        text = query or synset.name
        body = get_json(
            self.session,
            self.api,
            params={
                "method": "flickr.photos.search",
                "api_key": self.key,
                "text": text,
                "license": ",".join(LICENSES),
                "safe_search": "1",
                "content_type": "1",
                "media": "photos",
                "sort": "relevance",
                "extras": "license,owner_name," + ",".join(SIZES),
                "per_page": str(self.page_size),
                "page": str(page),
                "format": "json",
                "nojsoncallback": "1",
            },
        )
        if not isinstance(body, dict) or body.get("stat") != "ok":
            message = body.get("message", "") if isinstance(body, dict) else ""
            raise SourceError(f"Flickr refused the search: {message or 'bad answer'}.")
        photos = body.get("photos") or {}
        hits = []
        for i, photo in enumerate(photos.get("photo") or []):
            url = next((photo[s] for s in SIZES if photo.get(s)), None)
            if url is None:
                url = f"https://live.staticflickr.com/{photo['server']}/{photo['id']}_{photo['secret']}_b.jpg"
            hits.append(
                Hit(
                    url=url,
                    source=self.name,
                    query=text,
                    rank=(page - 1) * self.page_size + i + 1,
                    license=LICENSES.get(str(photo.get("license"))),
                    creator=photo.get("ownername"),
                    landing_url=f"https://www.flickr.com/photos/{photo.get('owner')}/{photo.get('id')}",
                    title=photo.get("title") or None,
                )
            )
        pages = int(photos.get("pages") or 0)
        return SearchPage(hits, last=not hits or page >= pages)
