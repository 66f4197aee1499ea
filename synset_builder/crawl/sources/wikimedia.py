"""Wikimedia Commons through the MediaWiki API, no key needed.

``generator=search`` in the File namespace (6) with ``prop=imageinfo`` gives
each file's URL, licence and author in one request; pages are addressed by
``gsroffset`` so any page can be asked for again after a crash. Authors come as
HTML in ``extmetadata``: we keep the text only.
"""

from __future__ import annotations

import html
import re

from synset_builder.config import Settings
from synset_builder.crawl.sources import Hit, SearchPage, SourceError, SynsetRef
from synset_builder.crawl.sources.http import api_session, get_json

PAGE_SIZE = 50
IMAGE_MIMES = {"image/jpeg", "image/png", "image/webp", "image/gif"}
_TAG = re.compile(r"<[^>]+>")


def _meta(info: dict, key: str) -> str | None:
    value = (info.get("extmetadata") or {}).get(key, {}).get("value")
    if not value:
        return None
    return html.unescape(_TAG.sub("", str(value))).strip() or None


class WikimediaSource:
    name = "wikimedia"
    uses_queries = True
    page_size = PAGE_SIZE

    def __init__(self, arg: str | None, settings: Settings) -> None:
        self.spec = "wikimedia"
        self.api = settings.crawl.wikimedia_url
        self.session = api_session(settings)

    def search(self, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
        text = query or synset.name
        body = get_json(
            self.session,
            self.api,
            params={
                "action": "query",
                "format": "json",
                "formatversion": "2",
                "generator": "search",
                "gsrsearch": f"{text} filetype:bitmap",
                "gsrnamespace": "6",
                "gsrlimit": str(self.page_size),
                "gsroffset": str((page - 1) * self.page_size),
                "prop": "imageinfo",
                "iiprop": "url|mime|extmetadata",
            },
        )
        if not isinstance(body, dict):
            raise SourceError("Wikimedia answered something that is not a JSON object.")
        if "error" in body:
            raise SourceError(f"Wikimedia refused the search: {body['error'].get('info', '')}.")
        pages = (body.get("query") or {}).get("pages") or []
        pages = sorted(pages, key=lambda p: p.get("index", 0))
        hits = []
        for i, item in enumerate(pages):
            info = (item.get("imageinfo") or [{}])[0]
            if info.get("mime") not in IMAGE_MIMES or not info.get("url"):
                continue
            hits.append(
                Hit(
                    url=info["url"],
                    source=self.name,
                    query=text,
                    rank=(page - 1) * self.page_size + i + 1,
                    license=_meta(info, "LicenseShortName"),
                    creator=_meta(info, "Artist"),
                    landing_url=info.get("descriptionurl"),
                    title=str(item.get("title", "")).removeprefix("File:") or None,
                )
            )
        return SearchPage(hits, last="continue" not in body or not pages)
