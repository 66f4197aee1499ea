"""The clean stage: quality filter, near-duplicate groups, conflicts, reference leaks.

A function of (session, data folder, config) that can run alone and again: images
are decoded and hashed once (only those never looked at), while everything that
depends on the whole collection (groups, placeholders, representatives,
conflicts) is recomputed from the stored hashes and written only where it
changed, so a second run changes nothing. Nothing is deleted; every exclusion is
a flag with a reason (see :mod:`synset_builder.pool`).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from synset_builder.clean import dedup
from synset_builder.clean.batches import (
    KEEP_EVERY,
    hash_on_cluster,
    image_file,
    is_missing,
    keep_fingerprints,
    pending,
    read_kept,
    write_fingerprints,
)
from synset_builder.clean.fingerprint import Fingerprint, fingerprint_all
from synset_builder.clean.quality import (
    placeholders,
    reason_key,
    recomputed_placeholder,
    same_picture,
)
from synset_builder.config.clean import CleanConfig
from synset_builder.db.models import Candidate, Image, ImageHash, SynsetEdge
from synset_builder.distributed import BatchRunner
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.progress import phase

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class CleanReport:
    """What a run found; ``changed`` counts rows it wrote (0 on an idempotent rerun)."""

    hashed: int = 0
    # Fingerprints a dry run kept, used instead of decoding the file again.
    reused: int = 0
    missing: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    greyscale: int = 0
    near_duplicates: int = 0
    groups: int = 0
    conflicts: int = 0
    reference_matches: int = 0
    changed: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "hashed": self.hashed,
            "reused_from_dry_run": self.reused,
            "missing_files": self.missing,
            "rejected_by_reason": dict(sorted(self.reasons.items())),
            "greyscale_flagged": self.greyscale,
            "near_duplicates": self.near_duplicates,
            "duplicate_groups": self.groups,
            "conflicts": self.conflicts,
            "reference_matches": self.reference_matches,
            "changed": self.changed,
        }


def keep(session: Session, sha256: str) -> None:
    """A curator's override: this picture stays in the pool whatever the filter says."""
    image = session.scalar(select(Image).where(Image.sha256 == sha256.lower()))
    if image is None:
        raise NotFound(f"No image has the sha256 {sha256}.")
    image.keep = True


def _fingerprint_new(
    session: Session,
    data_dir: Path,
    cfg: CleanConfig,
    commit: bool,
    report: CleanReport,
    runner: BatchRunner | None = None,
) -> None:
    """Decode and hash the images never looked at (or never hashed with this algo).

    On a cluster the workers write each batch's rows themselves; a dry run keeps
    every write in this session (to be rolled back), so there they only hash. A
    dry run keeps the fingerprints themselves (facts about the bytes) in a file,
    and the next run takes them from there instead of decoding again.
    A missing file gets no verdict (it is looked for again next run): a wrong data
    folder must not turn a whole collection into "unreadable".
    """
    every = session.execute(
        select(Image.id, Image.path, Image.quality, Image.sha256)
        .where(pending(cfg))
        .order_by(Image.id)
    ).all()
    kept = read_kept(data_dir, cfg.hash) if every else {}
    reused = [(r.id, r.quality, kept[r.sha256]) for r in every if r.sha256 in kept]
    todo = [r for r in every if r.sha256 not in kept]
    report.reused = len(reused)
    write_fingerprints(session, iter(reused), cfg, commit)
    if todo and runner is not None and commit:
        ids = [r.id for r in todo]
        report.hashed, report.missing = hash_on_cluster(session, runner, data_dir, cfg, ids)
    elif todo:
        paths = [image_file(data_dir, r.path) for r in todo]
        results = fingerprint_all(paths, cfg.hash, cfg.workers, runner=runner)
        with phase(len(todo), "hash", "img") as bar:

            def computed() -> Iterator[tuple[int, str | None, Fingerprint]]:
                batch: list[tuple[str, Fingerprint]] = []
                for r, fp in zip(todo, results, strict=True):
                    report.missing += is_missing(fp)
                    report.hashed += not is_missing(fp)
                    batch.append((r.sha256, fp))
                    if not commit and len(batch) >= KEEP_EVERY:
                        keep_fingerprints(data_dir, cfg.hash, batch)
                        batch = []
                    bar.update(1)
                    yield r.id, r.quality, fp
                if not commit:
                    keep_fingerprints(data_dir, cfg.hash, batch)

            write_fingerprints(session, computed(), cfg, commit)
    session.flush()
    if (
        todo
        and report.missing == len(todo)
        and not session.scalar(select(func.count(ImageHash.image_id)))
    ):
        raise NotFound(
            f"None of the {len(todo)} image file(s) to clean is under the data folder "
            f"{data_dir}; is SYNSET_DATA_DIR right?"
        )


def _load_table(session: Session, algo: str) -> tuple[list[int], dedup.HashTable]:
    rows = session.execute(
        select(ImageHash.image_id, ImageHash.full, ImageHash.crop90, ImageHash.crop80,
               ImageHash.mirror)
        .where(ImageHash.algo == algo)
        .order_by(ImageHash.image_id)
    ).all()  # fmt: skip
    return [r[0] for r in rows], dedup.HashTable.from_rows([r[1:] for r in rows])


def _ancestors(session: Session) -> dict[int, set[int]]:
    parents: dict[int, set[int]] = defaultdict(set)
    for parent, child in session.execute(select(SynsetEdge.parent_id, SynsetEdge.child_id)):
        parents[child].add(parent)
    memo: dict[int, set[int]] = {}

    def up(s: int) -> set[int]:
        if s not in memo:
            memo[s] = set()
            stack, seen = list(parents.get(s, ())), set()
            while stack:
                p = stack.pop()
                if p not in seen:
                    seen.add(p)
                    stack.extend(parents.get(p, ()))
            memo[s] = seen
        return memo[s]

    return defaultdict(set, {s: up(s) for s in list(parents)})


def _unrelated(synsets: set[int], ancestors: dict[int, set[int]]) -> bool:
    """Two of these synsets are neither the same nor one a hypernym of the other."""
    items = sorted(synsets)
    return any(
        b not in ancestors[a] and a not in ancestors[b]
        for n, a in enumerate(items)
        for b in items[n + 1 :]
    )


def _apply_groups(session: Session, cfg: CleanConfig, report: CleanReport) -> dict[int, int]:
    ids, table = _load_table(session, cfg.hash)
    i, j = dedup.self_pairs(table, cfg.max_distance, cfg.search)
    names = dedup.group_ids(ids, dedup.group_labels(len(ids), i, j))
    group_of = dict(zip(ids, names, strict=True))
    report.groups = sum(1 for size in Counter(names).values() if size > 1)
    current = dict(session.execute(select(Image.id, Image.dup_group)).all())
    changes = [
        {"id": k, "dup_group": group_of.get(k)}
        for k, old in current.items()
        if old != group_of.get(k)
    ]
    if changes:
        session.execute(update(Image), changes)
        report.changed += len(changes)
    return group_of


def _known_placeholders(
    session: Session, data_dir: Path, cfg: CleanConfig, runner: BatchRunner | None
) -> dict[int, str]:
    """Images that are a re-sent copy of a placeholder file a curator named.

    A hash within ``max_distance`` finds the candidates, and :func:`same_picture`
    confirms each (flat pages hash alike). The files are hashed on every run (there
    are a few) and never stored: the list is an option, so an image flagged by a
    file that is no longer named goes back.
    """
    if not cfg.placeholders:
        return {}
    files = [Path(f).resolve() for f in cfg.placeholders]
    fps = list(fingerprint_all(files, cfg.hash, cfg.workers, runner=runner))
    for f, fp in zip(files, fps, strict=True):
        if fp.error is not None and fp.error.startswith("missing"):
            raise NotFound(f"The placeholder file {f} does not exist.")
        if fp.error is not None:
            raise InvalidInput(f"The placeholder file {f} is not a readable image ({fp.error}).")
    refs = dedup.HashTable.from_rows([fp.hashes for fp in fps])
    ids, table = _load_table(session, cfg.hash)
    ia, ib = dedup.cross_pairs(table, refs, cfg.max_distance, cfg.search)
    pairs = sorted(zip((ids[a] for a in ia.tolist()), ib.tolist(), strict=True))
    wanted = select(Image.id, Image.path).where(Image.id.in_({a for a, _ in pairs}))
    paths = {image_id: path for image_id, path in session.execute(wanted)}
    flagged: dict[int, str] = {}
    for image_id, b in pairs:
        if image_id not in flagged and same_picture(
            image_file(data_dir, paths[image_id]), files[b]
        ):
            flagged[image_id] = f"placeholder: like the known placeholder {files[b].name}"
    return flagged


def _apply_placeholders(
    session: Session,
    data_dir: Path,
    cfg: CleanConfig,
    group_of: dict[int, int],
    report: CleanReport,
    runner: BatchRunner | None = None,
) -> None:
    rows = session.execute(select(Candidate.image_id, Candidate.synset_id, Candidate.url)).all()
    flagged = placeholders(rows, group_of, cfg.placeholder_synsets)
    flagged.update(_known_placeholders(session, data_dir, cfg, runner))
    images = session.execute(
        select(Image.id, Image.quality, Image.quality_reason).where(Image.quality.is_not(None))
    ).all()
    changes = []
    for image_id, quality, reason in images:
        # A flat-background verdict is the image's own and stays (quality.verdict).
        is_placeholder = recomputed_placeholder(reason)
        if image_id in flagged and (quality == "ok" or is_placeholder):
            if reason != flagged[image_id]:
                changes.append({"id": image_id, "quality": "rejected",
                                "quality_reason": flagged[image_id]})  # fmt: skip
        elif is_placeholder and image_id not in flagged:
            changes.append({"id": image_id, "quality": "ok", "quality_reason": None})
    if changes:
        session.execute(update(Image), changes)
        report.changed += len(changes)


def _apply_representatives(session: Session, group_of: dict[int, int], report: CleanReport) -> None:
    rows = session.execute(
        select(Candidate.id, Candidate.synset_id, Candidate.image_id,
               Candidate.near_duplicate_of, Candidate.conflict_group, Image.quality,
               Image.keep, Image.width, Image.height, Image.bytes, Image.sharpness,
               Image.greyscale)
        .join(Image, Image.id == Candidate.image_id)
    ).all()  # fmt: skip
    by_group: dict[int, list] = defaultdict(list)
    for row in rows:
        if row.image_id in group_of:
            by_group[group_of[row.image_id]].append(row)
    ancestors = _ancestors(session)
    want_dup: dict[int, int | None] = {}
    want_conflict: dict[int, int | None] = {}
    for group, members in by_group.items():
        per_synset: dict[int, list[dedup.Member]] = defaultdict(list)
        for r in members:
            eligible = r.quality != "rejected" or bool(r.keep)
            per_synset[r.synset_id].append(
                dedup.Member(r.id, eligible, bool(r.keep), r.width * r.height, r.bytes,
                             r.sharpness or 0.0, bool(r.greyscale))
            )  # fmt: skip
        for synset_members in per_synset.values():
            want_dup.update(dedup.representatives(synset_members))
        usable = {r.synset_id for r in members if r.quality != "rejected" or r.keep}
        conflict = group if len(usable) > 1 and _unrelated(usable, ancestors) else None
        for r in members:
            want_conflict[r.id] = conflict
    changes = []
    for r in rows:
        dup, conflict = want_dup.get(r.id), want_conflict.get(r.id)
        if (r.near_duplicate_of, r.conflict_group) != (dup, conflict):
            changes.append({"id": r.id, "near_duplicate_of": dup, "conflict_group": conflict})
    report.near_duplicates = sum(1 for v in want_dup.values() if v is not None)
    report.conflicts = sum(1 for v in want_conflict.values() if v is not None)
    if changes:
        session.execute(update(Candidate), changes)
        report.changed += len(changes)


def reference_files(path: Path) -> list[Path]:
    """The pictures of a reference set: an export (its manifest.csv) or any folder."""
    if not path.exists():
        raise NotFound(f"The reference set {path} does not exist.")
    manifest = path / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            files = [path / row["path"] for row in csv.DictReader(fh) if row.get("path")]
    elif path.is_file():
        raise InvalidInput(f"The reference set {path} must be a folder or an export.")
    else:
        files = [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise InvalidInput(f"The reference set {path} holds no images.")
    return sorted(files)


def _apply_reference(
    session: Session,
    against: Path,
    cfg: CleanConfig,
    report: CleanReport,
    runner: BatchRunner | None = None,
) -> None:
    files = reference_files(against)
    fps = list(fingerprint_all(files, cfg.hash, cfg.workers, runner=runner))
    readable = [(f, fp) for f, fp in zip(files, fps, strict=True) if fp.error is None]
    refs = dedup.HashTable.from_rows([fp.hashes for _, fp in readable])
    ids, table = _load_table(session, cfg.hash)
    ia, ib = dedup.cross_pairs(table, refs, cfg.max_distance, cfg.search)
    matched: dict[int, str] = {}
    for a, b in zip(ia.tolist(), ib.tolist(), strict=True):
        matched.setdefault(ids[a], str(readable[b][0]))
    flagged = set(session.scalars(select(Image.id).where(Image.reference_match.is_not(None))))
    changes = [{"id": k, "reference_match": v} for k, v in matched.items() if k not in flagged]
    if changes:
        session.execute(update(Image), changes)
        report.changed += len(changes)
    report.reference_matches = len(matched)


def run_clean(
    session: Session,
    data_dir: Path,
    cfg: CleanConfig,
    *,
    against: Path | None = None,
    commit: bool = True,
    runner: BatchRunner | None = None,
) -> CleanReport:
    """Run the whole stage; with ``commit=False`` nothing is committed (dry runs).

    With a ``runner`` (``--cluster``) the hashing runs on Dask workers, which write each
    image batch's verdicts and hashes; the grouping below then runs here, over all of
    them. The rows are the same as a single-machine run's.
    """
    report = CleanReport()
    if runner is not None:  # workers run in folders of their own
        data_dir = Path(data_dir).resolve()
        against = against.resolve() if against is not None else None
    _fingerprint_new(session, data_dir, cfg, commit, report, runner)
    group_of = _apply_groups(session, cfg, report)
    _apply_placeholders(session, data_dir, cfg, group_of, report, runner)
    if against is not None:
        _apply_reference(session, against, cfg, report, runner)
    _apply_representatives(session, group_of, report)
    session.flush()
    # The bulk updates above bypass loaded objects; let callers see what was written.
    session.expire_all()
    for sha, reason in session.execute(
        select(Image.sha256, Image.quality_reason)
        .where(Image.quality == "rejected", Image.keep.is_(False))
        .order_by(Image.sha256)
    ):
        report.reasons[reason_key(reason or "unknown")] += 1
        report.rejected.append((sha, reason or "unknown"))
    report.greyscale = (
        session.scalar(select(func.count()).select_from(Image).where(Image.greyscale.is_(True)))
        or 0
    )
    return report
