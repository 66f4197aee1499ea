"""Provenance text from search services made safe to store: the one place it is cleaned.

Search APIs hand back whatever their uploaders typed: Wikimedia's ``Artist`` field
is often a paragraph, titles carry control characters, and a single NUL byte or a
licence longer than its column makes PostgreSQL refuse the whole write batch, so a
synset could never finish. :class:`~synset_builder.crawl.sources.Hit` runs every field
through here when it is built, so every source (and every later one) stores the
same thing on PostgreSQL and SQLite, and the URL a crawl remembers is exactly the
one it fetched.

Text: control characters and lone surrogates (not encodable as UTF-8) are removed,
whitespace runs become one space, and a value longer than its column is cut with
an ellipsis so a reader sees it was cut. URLs are never cut (they are identities);
their whitespace and control characters are handled as a browser does (WHATWG URL:
ends stripped, tabs and newlines dropped, the rest percent-encoded).
"""

from __future__ import annotations

import re

from synset_builder.db.models import Candidate

MARKER = "\u2026"  # the ellipsis that says "cut here"
# Column sizes of the provenance fields (the same on candidate and fetch_failures).
LIMITS: dict[str, int | None] = {
    name: getattr(Candidate.__table__.c[name].type, "length", None)
    for name in ("query", "license", "creator", "title")
}

# C0 and C1 controls, DEL, and lone surrogates (JSON "\ud800" decodes to one).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_URL_ENDS = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")
_URL_DROP = re.compile(r"[\t\n\r\ud800-\udfff]")
_URL_ESCAPE = re.compile(r"[\x00-\x20\x7f]")


def clean_text(value: object, limit: int | None = None) -> str | None:
    """``value`` as one clean line, cut to ``limit`` characters with a marker; None if empty.

    Whitespace controls (tab, newline) become spaces before the rest are removed,
    so "a\\nb" stays two words.
    """
    if value is None:
        return None
    text = " ".join(_CONTROL.sub("", " ".join(str(value).split())).split())
    if not text:
        return None
    if limit is not None and len(text) > limit:
        text = text[: limit - len(MARKER)].rstrip() + MARKER
    return text


def clean_url(value: object) -> str:
    """A URL with nothing a database or an HTTP request line would choke on.

    Only bytes that cannot appear in a URL change, so a valid URL is returned as is
    and cleaning twice changes nothing.
    """
    text = _URL_DROP.sub("", _URL_ENDS.sub("", str(value)))
    return _URL_ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", text)


def clean_landing_url(value: object) -> str | None:
    """A landing page is a link for people: only http(s), else nothing is kept."""
    if value is None:
        return None
    url = clean_url(value)
    return url if url.lower().startswith(("http://", "https://")) else None
