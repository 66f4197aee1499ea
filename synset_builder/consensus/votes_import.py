"""``synset votes import``: votes collected elsewhere (a spreadsheet, an MTurk batch,
a Label Studio project).

``vote_formats`` reads the file into (item, worker, answer) rows; this module
matches each item to a candidate and writes the votes exactly as the web app's
votes are written (a ``Vote`` row, whose triggers keep the tallies, then
``after_votes`` for the consensus of the candidates touched).

An item is a candidate id, the candidate's source URL, or the image's sha256
(also found as the file name at the end of a URL, as exports and hosting
buckets name files by hash). ``--synset WNID`` keeps matches to that synset's
candidates; without it an image or URL that is a candidate of several synsets
is ambiguous and skipped. A worker becomes an annotator account without a
password (the same crowd account the web app would create for that worker id).
A worker that is an account's name, as ``votes export`` writes them, is that
account: a crowd account's votes come back to it (not to a new ``crowd-crowd-ID``),
and a staff account's votes are counted as present where they are and skipped
where they are not: a file may add votes for crowd workers only, never speak for
a curator.

Answers: yes/no words (1/0, yes/no, true/false) are the vote. Any other answer
is read as a class name, as multi-class crowd tasks give: naming the
candidate's synset (its wnid, name or a lemma) is a yes, naming another synset
of the database is a no, and an answer that names nothing known is skipped
rather than guessed (a typo must not become a "no").

Re-importing is idempotent: a vote is unique per (candidate, annotator), so a row
already present is counted as such; a row that contradicts a stored vote is
skipped and reported, never silently overwritten. A file in which no item
matches raises before anything is written.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.accounts import WORKER_ID, NameTaken, crowd_worker, find_crowd_worker
from synset_builder.consensus.crowd_files import binary_label
from synset_builder.consensus.live import after_votes
from synset_builder.consensus.team_growth import reopen_for
from synset_builder.consensus.vote_formats import VoteRecord, read_votes
from synset_builder.db.models import Annotator, Candidate, Image, Synset, Vote
from synset_builder.errors import NotFound

SHA256 = re.compile(r"\A[0-9a-fA-F]{64}\Z")
SHA_IN_URL = re.compile(r"(?<![0-9a-fA-F])([0-9a-fA-F]{64})(?![0-9a-fA-F])")
MAX_ID_DIGITS = 18  # beyond this a number is no candidate id (and overflows BIGINT)
CHUNK = 500

NO_ITEM = "no candidate has this id, source URL or image sha256"
AMBIGUOUS = "the item is a candidate of several synsets (give --synset)"
OTHER_SYNSET = "the candidate belongs to another synset than --synset"
BAD_LABEL = "label is not a yes/no answer or a class name known here"
BAD_WORKER = "worker id is not valid"
NAME_TAKEN = "the worker's account name belongs to a staff account"
CONTRADICTS = "the worker already voted the other way"
STAFF = "the worker is a staff account, which a file cannot add votes for"


@dataclass(frozen=True)
class Skip:
    where: str  # "line 7", "task 3 annotation 12"
    reason: str  # one of a few fixed phrases, counted per reason
    detail: str


@dataclass
class ImportResult:
    rows: int = 0
    added: int = 0
    already: int = 0
    skipped: list[Skip] = field(default_factory=list)

    def by_reason(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[k : k + CHUNK] for k in range(0, len(values), CHUNK)]


def _resolve(session: Session, items: set[str]) -> dict[str, set[tuple[int, int]]]:
    """Each item's (candidate id, synset id) pairs, by id, source URL, or sha256."""
    out: dict[str, set[tuple[int, int]]] = {}
    ids: dict[int, list[str]] = {}
    for item in items:
        if item.isdigit() and len(item) <= MAX_ID_DIGITS:
            ids.setdefault(int(item), []).append(item)
    numbers = sorted(ids)
    for k in range(0, len(numbers), CHUNK):
        for cid, sid in session.execute(
            select(Candidate.id, Candidate.synset_id).where(
                Candidate.id.in_(numbers[k : k + CHUNK])
            )
        ):
            for item in ids[cid]:
                out.setdefault(item, set()).add((cid, sid))
    urls = {i for i in items if not i.isdigit() and not SHA256.match(i)}
    by_url = select(Candidate.url, Candidate.id, Candidate.synset_id)
    # candidate.url has no index: past one chunk, one streamed scan beats a scan per chunk.
    queries = (
        [by_url.where(Candidate.url.in_(part)) for part in _chunks(sorted(urls))]
        if len(urls) <= CHUNK
        else [by_url.where(Candidate.url.is_not(None)).execution_options(yield_per=10_000)]
    )
    for query in queries:
        for url, cid, sid in session.execute(query):
            if url in urls:
                out.setdefault(url, set()).add((cid, sid))
    shas: dict[str, list[str]] = {}
    for item in items:
        if SHA256.match(item):
            shas.setdefault(item.lower(), []).append(item)
        elif item not in out and "/" in item:  # a URL whose file name is the hash
            found = SHA_IN_URL.findall(item.rsplit("/", 1)[-1])
            if len(found) == 1:
                shas.setdefault(found[0].lower(), []).append(item)
    for part in _chunks(sorted(shas)):
        for sha, cid, sid in session.execute(
            select(Image.sha256, Candidate.id, Candidate.synset_id)
            .join(Candidate, Candidate.image_id == Image.id)
            .where(Image.sha256.in_(part))
        ):
            for item in shas[sha]:
                out.setdefault(item, set()).add((cid, sid))
    return out


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def _class_names(session: Session) -> dict[str, set[int]]:
    """Every synset's wnid, name and lemmas (normalised) -> the synsets so named."""
    names: dict[str, set[int]] = {}
    for sid, wnid, name, lemmas in session.execute(
        select(Synset.id, Synset.wnid, Synset.name, Synset.lemmas)
    ):
        for word in [wnid, name, *(lemmas or [])]:
            names.setdefault(_norm(str(word)), set()).add(sid)
    return names


def _matched(
    records: list[VoteRecord], found: dict[str, set[tuple[int, int]]], synset_id: int | None
) -> tuple[list[tuple[VoteRecord, int, int]], list[Skip]]:
    """The rows whose item names exactly one candidate (of ``synset_id`` when given)."""
    usable: list[tuple[VoteRecord, int, int]] = []
    skipped: list[Skip] = []
    for rec in records:
        if rec.skip:
            skipped.append(Skip(rec.where, rec.skip, rec.item))
            continue
        pairs = found.get(rec.item, set())
        if synset_id is not None:
            mine = {p for p in pairs if p[1] == synset_id}
            if pairs and not mine:
                skipped.append(Skip(rec.where, OTHER_SYNSET, rec.item))
                continue
            pairs = mine
        if not pairs:
            skipped.append(Skip(rec.where, NO_ITEM, rec.item))
        elif len(pairs) > 1:
            skipped.append(Skip(rec.where, AMBIGUOUS, rec.item))
        else:
            ((cid, sid),) = pairs
            usable.append((rec, cid, sid))
    return usable, skipped


def _synset_id(session: Session, wnid: str) -> int:
    """The id of ``--synset``, which must exist: a typo must not import nothing."""
    synset_id = session.scalar(select(Synset.id).where(Synset.wnid == wnid))
    if synset_id is None:
        raise NotFound(f"There is no synset {wnid}; add it with 'synset hierarchy add'.")
    return synset_id


def _answer(label: str, synset_id: int, names: dict[str, set[int]] | None) -> bool | None:
    """A yes/no label, or a class name read as "is it this candidate's synset";
    None when it is neither."""
    answer = binary_label(label)
    if answer is None and names is not None:
        named = names.get(_norm(label))
        answer = None if not named else synset_id in named
    return answer


def _worker(
    session: Session, worker: str, existing: dict[tuple[int, int], bool], new: list[int]
) -> tuple[int | None, bool]:
    """The account of ``worker`` and whether it is staff; (None, False) when a person
    already holds the name it would get. Its earlier votes are loaded into
    ``existing`` so repeats are counted, not added.

    A crowd worker id first (the web app's account for it); then an account's own
    name, as ``votes export`` writes it; else a new crowd account for the id.
    """
    user = find_crowd_worker(session, worker) or session.scalar(
        select(Annotator).where(Annotator.username == worker)
    )
    if user is None:
        try:
            user = crowd_worker(session, worker, reopen=False)
        except NameTaken:
            return None, False
        new.append(user.id)
    aid = user.id
    existing.update(
        ((c, aid), a)
        for c, a in session.execute(
            select(Vote.candidate_id, Vote.answer).where(Vote.annotator_id == aid)
        )
    )
    return aid, user.worker_id is None


def import_votes(
    session: Session,
    path: Path,
    *,
    wnid: str | None = None,
    fmt: str = "csv",
    item_column: str | None = None,
    answer_column: str | None = None,
) -> ImportResult:
    """Add the file's votes; update the consensus of the candidates that got new ones."""
    synset_id = _synset_id(session, wnid) if wnid is not None else None
    records = read_votes(path, fmt, item_column=item_column, answer_column=answer_column)
    found = _resolve(session, {r.item for r in records if not r.skip})
    usable, skipped = _matched(records, found, synset_id)
    result = ImportResult(rows=len(records), skipped=skipped)
    if not usable:
        first = next((s for s in skipped if s.reason in (NO_ITEM, AMBIGUOUS, OTHER_SYNSET)), None)
        hint = f" (first: {first.where}, {first.detail!r}: {first.reason})" if first else ""
        raise NotFound(f"No vote in {path} matched a candidate; nothing was imported{hint}.")
    names = None
    if any(binary_label(rec.answer) is None for rec, _, _ in usable):
        names = _class_names(session)
    workers: dict[str, tuple[int | None, bool]] = {}
    newcomers: list[int] = []  # crowd accounts this file makes: they join the team
    existing: dict[tuple[int, int], bool] = {}
    touched: set[int] = set()
    for rec, cid, sid in usable:
        answer = _answer(rec.answer, sid, names)
        if answer is None:
            result.skipped.append(Skip(rec.where, BAD_LABEL, rec.answer))
            continue
        if not WORKER_ID.match(rec.worker):
            result.skipped.append(Skip(rec.where, BAD_WORKER, rec.worker))
            continue
        if rec.worker not in workers:
            workers[rec.worker] = _worker(session, rec.worker, existing, newcomers)
        aid, staff = workers[rec.worker]
        if aid is None:
            result.skipped.append(Skip(rec.where, NAME_TAKEN, rec.worker))
            continue
        key = (cid, aid)
        if key in existing:
            if existing[key] == answer:
                result.already += 1
            else:
                result.skipped.append(
                    Skip(rec.where, CONTRADICTS, f"{rec.worker} on candidate {cid}")
                )
            continue
        if staff:
            result.skipped.append(Skip(rec.where, STAFF, rec.worker))
            continue
        session.add(Vote(candidate_id=cid, annotator_id=aid, answer=answer, time_ms=rec.time_ms))
        existing[key] = answer
        touched.add(cid)
        result.added += 1
    session.flush()
    # What nobody was left for reopens for the file's new workers, once, after their
    # votes (an item they voted on here is not reopened for them).
    reopen_for(session, newcomers)
    ordered = sorted(touched)
    for start in range(0, len(ordered), CHUNK):
        after_votes(session, ordered[start : start + CHUNK])
    return result
