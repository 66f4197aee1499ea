"""The database side of the crawl: what is known already, and writing outcomes in batches.

The crawler's threads only download and store files; every row is written here,
by one thread, in the order the hits were found, a few hundred per transaction.
Writing in order is what makes a crawl reproducible: when two URLs carry the same
bytes, the one ranked first becomes the candidate, whatever finished first.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from synset_builder.crawl.fetch import Failed, Fetched, Outcome
from synset_builder.crawl.sources.provenance import clean_text
from synset_builder.db.models import Candidate, Consensus, CrawlPage, FetchFailure, Image
from synset_builder.db.session import on_postgresql

# A failure's detail is for a person reading it: an error message, not a document.
DETAIL_LIMIT = 500


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


@dataclass
class Tally:
    """Per-source summary: what the user sees at the end of a crawl."""

    found: int = 0
    downloaded: int = 0
    duplicate: int = 0
    known: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "found": self.found,
            "downloaded": self.downloaded,
            "duplicate": self.duplicate,
            "already_known": self.known,
            "failed": dict(sorted(self.failed.items())),
            "errors": self.errors,
        }

    def line(self, name: str) -> str:
        failed = ", ".join(f"{r} {n}" for r, n in sorted(self.failed.items()))
        text = (
            f"{name}: found {self.found}, downloaded {self.downloaded}, duplicate "
            f"{self.duplicate}, already known {self.known}, failed {sum(self.failed.values())}"
        )
        return text + (f" ({failed})" if failed else "")


@dataclass(frozen=True)
class PageDone:
    synset_id: int
    source: str
    query: str
    page: int
    hits: int
    last: bool


def known_urls(session: Session, synset_id: int) -> set[str]:
    """URLs of a synset already turned into a candidate or recorded as failed."""
    got = session.scalars(
        select(Candidate.url).where(Candidate.synset_id == synset_id, Candidate.url.is_not(None))
    )
    failed = session.scalars(select(FetchFailure.url).where(FetchFailure.synset_id == synset_id))
    return {u for u in got if u} | set(failed)


def finished_pages(session: Session, synset_id: int) -> dict[tuple[str, str, int], bool]:
    """(source, query, page) -> whether it was the last page, for pages fully processed."""
    rows = session.execute(
        select(CrawlPage.source, CrawlPage.query, CrawlPage.page, CrawlPage.last).where(
            CrawlPage.synset_id == synset_id
        )
    )
    return {(s, q, p): last for s, q, p, last in rows}


def candidate_counts(session: Session) -> dict[int, int]:
    stmt = select(Candidate.synset_id, func.count()).group_by(Candidate.synset_id)
    return {sid: n for sid, n in session.execute(stmt)}


def decision_counts(session: Session, decision: str) -> dict[int, int]:
    stmt = (
        select(Candidate.synset_id, func.count())
        .join(Consensus, Consensus.candidate_id == Candidate.id)
        .where(Consensus.decision == decision)
        .group_by(Candidate.synset_id)
    )
    return {sid: n for sid, n in session.execute(stmt)}


def open_failures(session: Session, synset_id: int) -> list[FetchFailure]:
    return list(
        session.scalars(
            select(FetchFailure)
            .where(FetchFailure.synset_id == synset_id, FetchFailure.resolved.is_(False))
            .order_by(FetchFailure.id)
        )
    )


def _provenance(outcome: Outcome) -> dict[str, object]:
    hit = outcome.hit
    return {
        "source": hit.source,
        "url": hit.url,
        "query": hit.query,
        "rank": hit.rank,
        "license": hit.license,
        "creator": hit.creator,
        "landing_url": hit.landing_url,
        "title": hit.title,
    }


def _insert_images(session: Session, rows: list[dict[str, object]]) -> dict[str, int]:
    """Insert image rows that another writer may be inserting now; sha256 -> id for all.

    On a cluster two workers can meet the same bytes for two synsets at once: the
    unique sha256 makes one insert wait for the other, and ON CONFLICT DO NOTHING
    turns the loser into a no-op whose id is read back. Rows come sorted by sha256,
    so two such writers always lock in the same order and cannot deadlock.
    """
    dialect = postgresql if on_postgresql(session) else sqlite
    stmt = dialect.insert(Image).on_conflict_do_nothing(index_elements=[Image.sha256])
    ids = dict(session.execute(stmt.returning(Image.sha256, Image.id), rows).all())
    lost = [r["sha256"] for r in rows if r["sha256"] not in ids]
    if lost:
        ids.update(
            session.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(lost))).all()
        )
    return ids


def _image_ids(session: Session, ok: Sequence[tuple[int, Fetched]]) -> dict[str, int]:
    """sha256 -> image id for the downloaded files, inserting the images not yet known."""
    shas = {o.info.sha256 for _, o in ok}
    if not shas:
        return {}
    found = session.execute(select(Image.sha256, Image.id).where(Image.sha256.in_(shas)))
    ids = {sha: i for sha, i in found}
    fresh: dict[str, dict[str, object]] = {}
    for _, o in ok:
        if o.info.sha256 not in ids and o.info.sha256 not in fresh:
            fresh[o.info.sha256] = {
                "sha256": o.info.sha256,
                "path": o.path,
                "width": o.info.width,
                "height": o.info.height,
                "format": o.info.format,
                "bytes": o.info.nbytes,
            }
    if fresh:
        ids.update(_insert_images(session, [fresh[sha] for sha in sorted(fresh)]))
    return ids


def _known_pairs(
    session: Session, ok: Sequence[tuple[int, Fetched]], ids: dict[str, int]
) -> set[tuple[int, int]]:
    """(image, synset) pairs already candidates: a second URL of one file is a duplicate."""
    if not ok:
        return set()
    return {
        (image_id, sid)
        for image_id, sid in session.execute(
            select(Candidate.image_id, Candidate.synset_id).where(
                Candidate.image_id.in_({ids[o.info.sha256] for _, o in ok}),
                Candidate.synset_id.in_({sid for sid, _ in ok}),
            )
        )
    }


def _failure_rows(
    session: Session, failures: Sequence[tuple[int, Failed]]
) -> dict[tuple[int, str], FetchFailure]:
    """The failure records already kept for these URLs, by (synset, URL key)."""
    if not failures:
        return {}
    keys = {url_key(o.hit.url) for _, o in failures}
    rows = session.scalars(
        select(FetchFailure).where(
            FetchFailure.url_sha256.in_(keys),
            FetchFailure.synset_id.in_({sid for sid, _ in failures}),
        )
    )
    return {(row.synset_id, row.url_sha256): row for row in rows}


def _failure(
    sid: int,
    outcome: Failed,
    existing: dict[tuple[int, str], FetchFailure],
    new_failures: dict[tuple[int, str], dict[str, object]],
) -> None:
    """Update a kept failure record in place, or add a new one (once per URL)."""
    key = (sid, url_key(outcome.hit.url))
    # Details quote servers (reason phrases, headers): cleaned like provenance.
    detail = clean_text(outcome.detail, DETAIL_LIMIT) or ""
    row = existing.get(key)
    if row is not None:
        row.reason, row.detail = outcome.reason, detail
        row.attempts += outcome.attempts
        row.resolved = False
    elif key not in new_failures:
        new_failures[key] = {
            "synset_id": sid,
            "url_sha256": key[1],
            "reason": outcome.reason,
            "detail": detail,
            "attempts": outcome.attempts,
            "resolved": False,
            **_provenance(outcome),
        }


def record(
    session: Session,
    entries: Sequence[tuple[int, Outcome]],
    pages: Sequence[PageDone] = (),
    *,
    resolve_failures: bool = False,
) -> list[str]:
    """Write a batch of outcomes, in order, and commit; return new|duplicate|failed each."""
    ok = [(sid, o) for sid, o in entries if isinstance(o, Fetched)]
    ids = _image_ids(session, ok)
    pairs = _known_pairs(session, ok, ids)
    existing = _failure_rows(session, [(s, o) for s, o in entries if isinstance(o, Failed)])
    statuses: list[str] = []
    candidates: list[dict[str, object]] = []
    new_failures: dict[tuple[int, str], dict[str, object]] = {}
    resolved: dict[int, list[str]] = {}
    for sid, outcome in entries:
        if isinstance(outcome, Failed):
            statuses.append("failed")
            _failure(sid, outcome, existing, new_failures)
            continue
        image_id = ids[outcome.info.sha256]
        resolved.setdefault(sid, []).append(url_key(outcome.hit.url))
        if (image_id, sid) in pairs:
            statuses.append("duplicate")
            continue
        pairs.add((image_id, sid))
        candidates.append({"image_id": image_id, "synset_id": sid, **_provenance(outcome)})
        statuses.append("new")
    if candidates:
        session.execute(insert(Candidate), candidates)
    if new_failures:
        session.execute(insert(FetchFailure), list(new_failures.values()))
    if resolve_failures:
        for sid, keys in resolved.items():
            session.execute(
                update(FetchFailure)
                .where(FetchFailure.synset_id == sid, FetchFailure.url_sha256.in_(keys))
                .values(resolved=True)
            )
    if pages:
        fields = ("synset_id", "source", "query", "page", "hits", "last")
        session.execute(insert(CrawlPage), [{f: getattr(p, f) for f in fields} for p in pages])
    session.commit()
    return statuses
