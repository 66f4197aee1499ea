"""The crawl stage: search every target's queries, download the hits, store them with provenance."""
