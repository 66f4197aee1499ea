"""What goes into an export: accepted images of the pool, one class each.

Reads the decisions in force (a curator's judgement over the crowd's consensus:
synset_builder/review/decisions.py) of candidates still in the pool
(``synset_builder.pool.clean_clause``, which also withholds taken-down images),
maps their synsets to the export's level, resolves images accepted for several
classes, filters licences and applies the per-class floor and cap.
Everything left out is counted with its reason, for the datasheet.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path

from sqlalchemy import ColumnElement, Row, Select, String, case, cast, func, select
from sqlalchemy.orm import Session, aliased

from synset_builder.db.models import Candidate, Consensus, Image, Synset, Takedown, Vote
from synset_builder.db.session import plan_for_every_row
from synset_builder.decision import Decision
from synset_builder.errors import InvalidInput
from synset_builder.export.labels import Hierarchy, Level, class_ids_for, load_hierarchy
from synset_builder.export.splits import unit_hash
from synset_builder.export.spool import Entry, ExportSpool
from synset_builder.pool import clean_clause
from synset_builder.review.decisions import decision_in_force, in_force
from synset_builder.takedown import taken_down_clause

# Rows fetched per round trip from the server-side cursor.
STREAM_BATCH = 5000


@dataclass
class Selection:
    """What was selected (the entries themselves are in the spool) and what was left out."""

    classes: dict[str, tuple[str, str]] = field(default_factory=dict)  # wnid -> name, gloss
    sizes: dict[str, int] = field(default_factory=dict)  # wnid -> entries kept
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)
    outside: int = 0
    license_filtered: int = 0
    # licence family -> accepted candidates --licenses left out (the empty export's reason)
    licences_left_out: Counter[str] = field(default_factory=Counter)
    taken_down: int = 0
    dropped_classes: dict[str, int] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)
    contributing: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        """Entries kept: (image, class) pairs, so a multi-label image counts per label."""
        return sum(self.sizes.values())


def licence_family(text: str | None) -> str:
    """``"CC BY-SA 4.0"``, ``"cc-by-sa 2.0"``, ``"by-sa 4.0"`` -> ``"by-sa"``.

    Sources spell licences their own way (Openverse ``by 4.0``, Flickr
    ``cc-by 2.0``, Wikimedia ``CC BY-SA 4.0``); ``--licenses by-sa`` means the
    family, whatever the version and spelling.
    """
    t = (text or "").strip().lower().replace("_", "-")
    t = re.sub(r"[\s-]+v?\d+(\.\d+)*$", "", t)
    t = re.sub(r"\s+", "-", t)
    return re.sub(r"^cc-(?=(by|nc|sa|nd)\b)", "", t)


# The Creative Commons families and public-domain marks the sources report (Flickr's
# ids, Openverse's codes, Wikimedia's short names), as licence_family spells them.
KNOWN_LICENCES = frozenset(
    {"by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd", "cc0", "pdm", "public-domain"}
)


def check_licences(session: Session, licenses: frozenset[str]) -> None:
    """``--licenses`` names only licences that exist: a typo would otherwise keep nothing,
    or quietly keep less. Known: the Creative Commons families, and whatever a ``urls:``
    list or a Wikimedia page gave a candidate in this database."""
    unknown = sorted(licenses - KNOWN_LICENCES)
    if not unknown:
        return
    stored = {licence_family(x) for x in session.scalars(select(Candidate.license).distinct())}
    unknown = [x for x in unknown if x not in stored]
    if unknown:
        known = ", ".join(sorted((KNOWN_LICENCES | stored) - {""}))
        raise InvalidInput(f"--licenses: unknown licence {unknown[0]!r}; known: {known}.")


def group_key() -> ColumnElement[str | None]:
    """An ``Image``'s near-duplicate group key: the sha256 of the group's oldest image.

    Keyed by content, not by the group number, so a re-run of dedup that
    renumbers groups, or a new near copy joining a group, leaves the key (and
    therefore the split) of every earlier image unchanged. Looked up per grouped
    image through the dup_group index: a join would hash every image on a column
    that is NULL for most of them.
    """
    oldest = aliased(Image)
    first = (
        select(oldest.sha256)
        .where(oldest.dup_group == Image.dup_group)
        .order_by(oldest.id)
        .limit(1)
        .scalar_subquery()
    )
    return case((Image.dup_group.is_not(None), first), else_=None).label("group_sha")


def _accepted_rows() -> Select:
    """Every accepted candidate in the pool with its image, group key and vote counts.

    Plain columns, not ORM objects, ordered by image so that one pass sees all the
    candidates of an image together; votes are counted and group keys found by
    the database in the same statement, not in Python dictionaries.
    """
    judged = in_force()
    votes = (
        select(
            Vote.candidate_id,
            func.sum(case((Vote.answer, 1), else_=0)).label("yes"),
            func.count().label("n"),
        )
        .outerjoin(Consensus, Consensus.candidate_id == Vote.candidate_id)
        .outerjoin(judged, judged.c.candidate_id == Vote.candidate_id)
        .where(decision_in_force(judged) == Decision.accepted)
        .group_by(Vote.candidate_id)
        .subquery()
    )
    expert = in_force()
    return (
        select(
            Image.id.label("image_id"),
            Image.sha256,
            Image.path,
            Image.width,
            Image.height,
            group_key(),
            Candidate.id,
            Candidate.synset_id,
            Candidate.source,
            Candidate.url,
            Candidate.license,
            Candidate.creator,
            # As text, "2026-03-01 12:00:00+00" (the datasheet wants its date and month):
            # a datetime per row, made and formatted back, is work for nothing.
            cast(Candidate.fetched_at, String).label("fetched_at"),
            # The model's belief even where a curator decided; 1 where no model had one.
            func.coalesce(Consensus.p_yes, 1.0).label("p_yes"),
            votes.c.yes,
            votes.c.n,
        )  # in the order _add_image unpacks them
        .select_from(Candidate)
        .join(Image, Image.id == Candidate.image_id)
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .outerjoin(expert, expert.c.candidate_id == Candidate.id)
        .outerjoin(votes, votes.c.candidate_id == Candidate.id)
        .where(decision_in_force(expert) == Decision.accepted, clean_clause())
        .order_by(Image.id, Candidate.id)
    )


def _resolve_path(data_dir: str, path: str) -> str:
    """The stored file's absolute path; ``data_dir`` is resolved once by the caller, so
    this is string work, not a walk of the file system per image (and the plain
    join of a content-addressed path is tried before the general rule)."""
    if not path.startswith("/") and ".." not in path and "//" not in path:
        return f"{data_dir}/{path.removeprefix('./')}"
    return os.path.normpath(os.path.join(data_dir, path))


def select_entries(
    session: Session,
    data_dir: Path,
    spool: ExportSpool,
    *,
    level: Level,
    multi_label: bool,
    licenses: frozenset[str] | None,
    min_per_class: int,
    max_per_class: int | None,
    seed: int,
) -> Selection:
    """Stream the accepted images into ``spool``; the counts of what was left out.

    Memory holds one image's candidates at a time (rows arrive by image from a
    server-side cursor), never the whole table.
    """
    hierarchy: Hierarchy = load_hierarchy(session)
    root = str(data_dir.resolve())
    class_ids = class_ids_for(session, level)
    sel = Selection()
    if licenses is not None:
        licenses = frozenset(licence_family(x) for x in licenses)
        check_licences(session, licenses)
    active = select(Takedown.id).where(Takedown.revoked_at.is_(None)).limit(1)
    if session.execute(active).first() is not None:  # else a scan to count nothing
        expert = in_force()
        sel.taken_down = session.execute(
            select(func.count(func.distinct(Image.id)))
            .select_from(Candidate)
            .join(Image, Image.id == Candidate.image_id)
            .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
            .outerjoin(expert, expert.c.candidate_id == Candidate.id)
            .where(decision_in_force(expert) == Decision.accepted, taken_down_clause())
        ).scalar_one()
    plan_for_every_row(session)  # read to the end: no fast-start plan, no JIT
    # Core, not the ORM: plain rows, no identity map, from a server-side cursor.
    capping = max_per_class is not None
    stream = _accepted_rows().execution_options(yield_per=STREAM_BATCH)
    for _, image_rows in groupby(session.connection().execute(stream), key=itemgetter(0)):
        cands = []
        for row in image_rows:
            if licenses is not None and (family := licence_family(row.license)) not in licenses:
                sel.license_filtered += 1
                sel.licences_left_out[family] += 1
                continue
            cands.append((row, hierarchy.map(row.synset_id, level, class_ids)))
        if cands:
            _add_image(sel, spool, hierarchy, root, cands, multi_label, seed, capping)
    spool.flush()
    _floor_and_cap(sel, spool, min_per_class, max_per_class)
    sel.sizes = dict(spool.sizes)
    for wnid, name, gloss in session.execute(select(Synset.wnid, Synset.name, Synset.gloss)):
        if wnid in sel.sizes:
            sel.classes[wnid] = (name, gloss or "")
    return sel


def _add_image(
    sel: Selection,
    spool: ExportSpool,
    hierarchy: Hierarchy,
    data_dir: str,
    cands: list[tuple[Row, set[int]]],
    multi_label: bool,
    seed: int,
    capping: bool,
) -> None:
    """One image's entries: its most specific label(s), each with its best candidate."""
    wnid_of = hierarchy.wnid
    _, sha, stored, width, height, group_sha, *_ = cands[0][0]
    found = cands[0][1] if len(cands) == 1 else set().union(*(m for _, m in cands))
    labels = found if len(found) < 2 else hierarchy.most_specific(found)
    if not labels:
        sel.outside += 1
        return
    if len(labels) > 1 and not multi_label:
        sel.ambiguous.append((sha, sorted(wnid_of[x] for x in labels)))
        return
    group = group_sha or sha
    shash = unit_hash(sha, seed)
    # The cap keeps a class's images in an order of their groups that is stable as the
    # class grows, and independent of the split's: capped by the split's own hash, a
    # class kept only its lowest hashes, which are the test split's.
    cap_hash = unit_hash(f"cap\x00{group}", seed) if capping else 0.0
    path = _resolve_path(data_dir, stored)
    entries = []
    for label in sorted(labels, key=wnid_of.__getitem__):
        if len(cands) == 1:
            row = cands[0][0]
        else:
            row = max((r for r, m in cands if label in m), key=lambda r: (r.p_yes, -r.id))
        # Unpacked at once: a Row's attribute lookup is slow, and this runs per image.
        *_, synset_id, source, url, licence, creator, fetched_at, p_yes, yes, n = row
        yes, n = int(yes or 0), int(n or 0)
        entries.append(
            Entry(
                sha256=sha,
                source_path=path,
                width=width,
                height=height,
                group=group,
                wnid=wnid_of[label],
                source=source,
                url=public_url(url),
                license=licence or "",
                creator=creator or "",
                votes_yes=yes,
                votes_no=n - yes,
                p_yes=float(p_yes),
                fetched_at=fetched_at,
                from_wnid=wnid_of[synset_id],
            )
        )
        sel.contributing.add(wnid_of[synset_id])
    spool.add_image(entries, cap_hash, shash)


def public_url(url: str | None) -> str:
    """The address an export publishes: a web address as crawled; nothing for a file
    imported from a local folder (``dir:``), whose ``file://`` path tells the world
    how the curator's disk is laid out and lets nobody fetch it. The database keeps
    the path; ``source`` says the image came from a folder."""
    if not url or url.lower().startswith("file:"):
        return ""
    return url


def _floor_and_cap(
    sel: Selection, spool: ExportSpool, min_per_class: int, max_per_class: int | None
) -> None:
    """Cap big classes by hash order (stable as classes grow), then drop thin ones."""
    for wnid, size in sorted(spool.sizes.items()):
        if max_per_class is not None and size > max_per_class:
            sel.capped[wnid] = spool.cap(wnid, max_per_class)
            size = max_per_class
        if size < min_per_class:
            sel.dropped_classes[wnid] = size
            spool.drop(wnid)
