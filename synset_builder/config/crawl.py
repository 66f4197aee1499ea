"""The crawl's config (``settings.crawl``): the image sources and the downloader's limits.

Named apart from :class:`synset_builder.crawl.plan.CrawlConfig`, which holds one
run's command options; the fetcher's limits go from here into its ``FetchConfig``.
Its flat names have no prefix (``SYNSET_FLICKR_KEY``), as they had before the
settings were grouped. ``contact`` stays a top-level setting: exports name it too.
"""

from __future__ import annotations

from pydantic import Field

from synset_builder.config.flat import Section


class CrawlSettings(Section):
    """Search services (tests point them at 127.0.0.1) and what a download may do."""

    openverse_url: str = Field("https://api.openverse.org", description="Openverse API root.")
    openverse_client_id: str | None = Field(
        None, description="Openverse client id (higher rate limits); optional."
    )
    openverse_client_secret: str | None = Field(
        None, description="Openverse client secret, with the client id."
    )
    wikimedia_url: str = Field(
        "https://commons.wikimedia.org/w/api.php", description="Wikimedia Commons API endpoint."
    )
    flickr_url: str = Field(
        "https://api.flickr.com/services/rest/", description="Flickr REST endpoint."
    )
    flickr_key: str | None = Field(None, description="Flickr API key; the flickr source needs it.")
    # Link-local and cloud metadata addresses stay refused (synset_builder/crawl/guard.py).
    allow_private_networks: bool = Field(
        False,
        description="Let the crawler fetch from private and loopback addresses (an intranet image "
        "server); link-local and cloud metadata addresses stay refused.",
    )
    download_deadline: float = Field(
        60.0,
        gt=0.0,
        description="Wall-clock seconds one image download may take, redirects included; a slower "
        "one fails as 'timeout' (tried again by --retry-failed).",
    )
