"""Openverse (``/v1/images/``): openly licensed images, no key needed.

Anonymous clients get small pages and a low rate; with
``SYNSET_OPENVERSE_CLIENT_ID``/``_SECRET`` we fetch an OAuth token (client
credentials grant) once and reuse it until it expires. Mature results are
excluded, as a dataset for annotators should be.
"""

from __future__ import annotations

import time

import requests

from synset_builder.config import Settings
from synset_builder.crawl.sources import Hit, SearchPage, SourceError, SynsetRef
from synset_builder.crawl.sources.http import api_session, get_json

ANONYMOUS_PAGE_SIZE = 20
AUTHENTICATED_PAGE_SIZE = 100


class OpenverseSource:
    name = "openverse"
    uses_queries = True

    def __init__(self, arg: str | None, settings: Settings) -> None:
        self.spec = "openverse"
        self.root = settings.crawl.openverse_url.rstrip("/")
        self.client_id = settings.crawl.openverse_client_id
        self.client_secret = settings.crawl.openverse_client_secret
        self.session = api_session(settings)
        self.page_size = AUTHENTICATED_PAGE_SIZE if self.client_id else ANONYMOUS_PAGE_SIZE
        self._token: str | None = None
        self._token_expires = 0.0

    def _auth_headers(self) -> dict[str, str]:
        if not (self.client_id and self.client_secret):
            return {}
        if self._token is None or time.time() > self._token_expires - 60:
            try:
                response = self.session.post(
                    f"{self.root}/v1/auth_tokens/token/",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.client_id,
                        "client_secret": self.client_secret,
                    },
                    timeout=30,
                )
            except requests.RequestException as exc:
                raise SourceError(f"Openverse cannot be reached for a token: {exc}.") from exc
            if response.status_code != 200:
                raise SourceError(
                    f"Openverse refused the client credentials (HTTP {response.status_code})."
                )
            body = response.json()
            self._token = str(body["access_token"])
            self._token_expires = time.time() + float(body.get("expires_in", 3600))
        return {"Authorization": f"Bearer {self._token}"}

    def search(self, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
        text = query or synset.name
        body = get_json(
            self.session,
            f"{self.root}/v1/images/",
            params={"q": text, "page_size": self.page_size, "page": page, "mature": "false"},
            headers=self._auth_headers(),
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise SourceError("Openverse answered without a results list.")
        hits = []
        for i, item in enumerate(body["results"]):
            if item.get("mature") or not item.get("url"):
                continue
            licence = " ".join(
                str(part) for part in (item.get("license"), item.get("license_version")) if part
            )
            hits.append(
                Hit(
                    url=item["url"],
                    source=self.name,
                    query=text,
                    rank=(page - 1) * self.page_size + i + 1,
                    license=licence or None,
                    creator=item.get("creator"),
                    landing_url=item.get("foreign_landing_url"),
                    title=item.get("title"),
                )
            )
        page_count = int(body.get("page_count") or 0)
        return SearchPage(hits, last=not body["results"] or page >= page_count)
