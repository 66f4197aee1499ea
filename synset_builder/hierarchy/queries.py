"""Query expansion: the search strings a synset is crawled with.

As ImageNet did: every lemma (underscores as spaces), and every lemma followed by
the head noun of each parent's first lemma ("whippet greyhound", "bee insect"),
because a bare lemma is often ambiguous to a search engine ("kite" the bird vs
the toy). The head noun, not the whole lemma: "bee hymenopterous insect" is a
phrase nobody captions a photo with. Curators add or remove
queries; removal keeps the row (active=False) so the provenance of images found
by it still reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Query, Synset
from synset_builder.errors import InvalidInput


def lemma_text(lemma: str) -> str:
    return " ".join(lemma.replace("_", " ").split())


# Words after which an English noun phrase's head has already come ("bird of prey").
_POST_HEAD = frozenset({"of", "in", "on", "for", "with", "from", "to", "at", "by"})


def head_noun(lemma: str) -> str:
    """The noun a lemma is a kind of: its last word, or the last before "of", "in", ..."""
    words = lemma_text(lemma).split()
    for n, word in enumerate(words[1:], 1):
        if word.casefold() in _POST_HEAD:
            return words[n - 1]
    return words[-1] if words else ""


def expand(lemmas: Sequence[str], parent_lemmas: Iterable[str]) -> list[tuple[str, str]]:
    """(text, kind) pairs, de-duplicated case-insensitively, in a stable order."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def push(text: str, kind: str) -> None:
        key = text.casefold()
        if text and key not in seen:
            seen.add(key)
            out.append((text, kind))

    words = [lemma_text(lemma) for lemma in lemmas]
    for word in words:
        push(word, "lemma")
    for parent in parent_lemmas:
        head = head_noun(parent)
        for word in words:
            # "hunting dog" under "dog" would give "hunting dog dog".
            if head and word.casefold().split()[-1] != head.casefold():
                push(f"{word} {head}", "lemma+parent")
    return out


def _queries_of(session: Session, synset: Synset) -> list[Query]:
    return list(session.scalars(select(Query).where(Query.synset_id == synset.id)))


def ensure_queries(session: Session, synset: Synset, wanted: Sequence[tuple[str, str]]) -> int:
    """Insert the missing ones; never revive a query a curator removed. Returns new count."""
    existing = {
        q.text.casefold()
        for q in session.scalars(select(Query).where(Query.synset_id == synset.id))
    }
    added = 0
    for text, kind in wanted:
        if text.casefold() not in existing:
            session.add(Query(synset_id=synset.id, text=text, kind=kind, active=True))
            existing.add(text.casefold())
            added += 1
    return added


def edit_queries(
    session: Session, synset: Synset, *, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> list[Query]:
    """A curator's changes; returns the synset's queries afterwards."""
    rows = {
        q.text.casefold(): q
        for q in session.scalars(select(Query).where(Query.synset_id == synset.id))
    }
    for raw in remove:
        row = rows.get(lemma_text(raw).casefold())
        if row is None:
            raise InvalidInput(f"{synset.wnid} has no query {raw!r}; nothing was changed.")
        row.active = False
    for raw in add:
        text = lemma_text(raw)
        if not text:
            raise InvalidInput("An empty query cannot be added.")
        row = rows.get(text.casefold())
        if row is None:
            row = Query(synset_id=synset.id, text=text, kind="custom", active=True)
            session.add(row)
            rows[text.casefold()] = row
        row.active = True
    session.flush()
    return sorted(rows.values(), key=lambda q: (not q.active, q.id or 0))


def active_queries(session: Session, synset_id: int) -> list[str]:
    return list(
        session.scalars(
            select(Query.text).where(Query.synset_id == synset_id, Query.active).order_by(Query.id)
        )
    )
