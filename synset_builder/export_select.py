"""What goes into an export: accepted images of the pool, one class each.

Reads the decisions (``Consensus.decision == "accepted"``) of candidates still in
the pool (``synset_builder.pool.clean_clause``, which also withholds taken-down
images), maps their synsets to the export's level, resolves images accepted
for several classes, filters licences and applies the per-class floor and cap.
Everything left out is counted with its reason, for the datasheet.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from synset_builder.db.models import Candidate, Consensus, Image, Synset, Vote
from synset_builder.export_labels import Hierarchy, Level, class_ids_for, load_hierarchy
from synset_builder.pool import clean_clause
from synset_builder.splits import unit_hash
from synset_builder.takedown import taken_down_clause


@dataclass(frozen=True)
class Entry:
    """One (image, class) row of the export, with the provenance of its best candidate."""

    sha256: str
    source_path: str
    width: int
    height: int
    group: str
    wnid: str
    source: str
    url: str
    license: str
    creator: str
    votes_yes: int
    votes_no: int
    p_yes: float
    fetched_at: datetime | None
    from_wnid: str


@dataclass
class Selection:
    entries: list[Entry] = field(default_factory=list)
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classes: dict[str, tuple[str, str]] = field(default_factory=dict)  # wnid -> name, gloss
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)
    outside: int = 0
    license_filtered: int = 0
    taken_down: int = 0
    dropped_classes: dict[str, int] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)
    contributing: set[str] = field(default_factory=set)


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


def group_keys(session: Session) -> dict[int, str]:
    """dup_group -> the sha256 of its oldest image.

    Keyed by content, not by the group number, so a re-run of dedup that
    renumbers groups, or a new near copy joining a group, leaves the key (and
    therefore the split) of every earlier image unchanged.
    """
    keys: dict[int, str] = {}
    stmt = select(Image.dup_group, Image.sha256).where(Image.dup_group.is_not(None))
    for group, sha in session.execute(stmt.order_by(Image.id)):
        keys.setdefault(group, sha)
    return keys


def _votes(session: Session) -> dict[int, tuple[int, int]]:
    stmt = (
        select(Vote.candidate_id, func.sum(case((Vote.answer, 1), else_=0)), func.count())
        .join(Consensus, Consensus.candidate_id == Vote.candidate_id)
        .where(Consensus.decision == "accepted")
        .group_by(Vote.candidate_id)
    )
    return {cid: (int(yes or 0), int(n) - int(yes or 0)) for cid, yes, n in session.execute(stmt)}


def _resolve_path(data_dir: Path, path: str) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (data_dir / p).resolve())


def select_entries(
    session: Session,
    data_dir: Path,
    *,
    level: Level,
    multi_label: bool,
    licenses: frozenset[str] | None,
    min_per_class: int,
    max_per_class: int | None,
    seed: int,
) -> Selection:
    hierarchy: Hierarchy = load_hierarchy(session)
    class_ids = class_ids_for(session, level)
    accepted = (
        select(Candidate, Image, Consensus.p_yes)
        .join(Image, Image.id == Candidate.image_id)
        .join(Consensus, Consensus.candidate_id == Candidate.id)
        .where(Consensus.decision == "accepted")
    )
    sel = Selection()
    if licenses is not None:
        licenses = frozenset(licence_family(x) for x in licenses)
    sel.taken_down = len(
        set(session.scalars(accepted.with_only_columns(Image.id).where(taken_down_clause())))
    )
    votes = _votes(session)
    keys = group_keys(session)
    per_image: dict[int, list[tuple[Candidate, float, set[int]]]] = defaultdict(list)
    images: dict[int, Image] = {}
    for cand, image, p_yes in session.execute(accepted.where(clean_clause())):
        if licenses is not None and licence_family(cand.license) not in licenses:
            sel.license_filtered += 1
            continue
        images[image.id] = image
        per_image[image.id].append((cand, p_yes, hierarchy.map(cand.synset_id, level, class_ids)))
    wnid_of = hierarchy.wnid
    for image_id in sorted(per_image):
        image, cands = images[image_id], per_image[image_id]
        labels = hierarchy.most_specific(set().union(*(m for _, _, m in cands)))
        if not labels:
            sel.outside += 1
            continue
        if len(labels) > 1 and not multi_label:
            sel.ambiguous.append((image.sha256, sorted(wnid_of[x] for x in labels)))
            continue
        group = keys.get(image.dup_group, image.sha256) if image.dup_group is not None else None
        for label in sorted(labels, key=wnid_of.__getitem__):
            cand, p_yes, _ = max(
                ((c, p, m) for c, p, m in cands if label in m), key=lambda t: (t[1], -t[0].id)
            )
            yes, no = votes.get(cand.id, (0, 0))
            sel.entries.append(
                Entry(
                    sha256=image.sha256,
                    source_path=_resolve_path(data_dir, image.path),
                    width=image.width,
                    height=image.height,
                    group=group or image.sha256,
                    wnid=wnid_of[label],
                    source=cand.source,
                    url=cand.url or "",
                    license=cand.license or "",
                    creator=cand.creator or "",
                    votes_yes=yes,
                    votes_no=no,
                    p_yes=float(p_yes),
                    fetched_at=cand.fetched_at,
                    from_wnid=wnid_of[cand.synset_id],
                )
            )
            sel.contributing.add(wnid_of[cand.synset_id])
    _floor_and_cap(sel, min_per_class, max_per_class, seed)
    for wnid, name, gloss in session.execute(
        select(Synset.wnid, Synset.name, Synset.gloss).where(
            Synset.wnid.in_(sorted({e.wnid for e in sel.entries}))
        )
    ):
        sel.classes[wnid] = (name, gloss or "")
    labels_of: dict[str, list[str]] = defaultdict(list)
    for e in sel.entries:
        labels_of[e.sha256].append(e.wnid)
    sel.labels = {sha: tuple(sorted(w)) for sha, w in labels_of.items()}
    return sel


def _floor_and_cap(
    sel: Selection, min_per_class: int, max_per_class: int | None, seed: int
) -> None:
    """Cap big classes by hash order (stable as classes grow), then drop thin ones."""
    by_class: dict[str, list[Entry]] = defaultdict(list)
    for e in sel.entries:
        by_class[e.wnid].append(e)
    kept: list[Entry] = []
    for wnid in sorted(by_class):
        members = sorted(by_class[wnid], key=lambda e: (unit_hash(e.group, seed), e.sha256))
        if max_per_class is not None and len(members) > max_per_class:
            sel.capped[wnid] = len(members) - max_per_class
            members = members[:max_per_class]
        if len(members) < min_per_class:
            sel.dropped_classes[wnid] = len(members)
            continue
        kept.extend(members)
    sel.entries = kept


def class_counts(entries: list[Entry]) -> Counter[str]:
    return Counter(e.wnid for e in entries)
