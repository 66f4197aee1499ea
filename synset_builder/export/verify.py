"""``synset verify``: re-check an export before anyone trains or publishes on it.

An export can rot after it is written: a file edited or truncated, a shard
copied half-way, a near duplicate discovered by a later clean run that now sits
in train and test, an image taken down since. Each of these is a problem line;
an export with none is fit to use. File checks need only the folder; the
takedown and current-dedup checks need the database and are skipped (and said
so) without one.
"""

from __future__ import annotations

import csv
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Image
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.export.croissant import check_croissant
from synset_builder.export.folder import sha_file
from synset_builder.export.select import group_key
from synset_builder.export.splits import SPLITS
from synset_builder.takedown import active_values, taken_down_shas

OWNED = (*SPLITS, "webdataset", "parquet")
MANIFEST_KEYS = {"path", "split", "wnid", "class_index", "sha256"}


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass
class VerifyReport:
    out: str
    files_checked: int = 0
    images: int = 0
    problems: list[str] = field(default_factory=list)
    taken_down: list[str] = field(default_factory=list)
    database_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, object]:
        return {**self.__dict__, "ok": self.ok}


@dataclass
class _Scan:
    """What one pass over the manifest keeps: a split per image and per group.

    At ILSVRC scale a dict per manifest row was gigabytes; these hold a few
    hundred bytes per image (an image's own string doubles as its group's).
    """

    split_of: dict[str, str] = field(default_factory=dict)  # sha256 -> its first split
    group_split: dict[str, str] = field(default_factory=dict)
    image_splits: dict[str, set[str]] = field(default_factory=dict)  # only those in several
    group_splits: dict[str, set[str]] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)  # by a takedown of its URL or creator
    row_problems: list[str] = field(default_factory=list)

    def place(self, sha: str, group: str, split: str) -> None:
        _note(self.split_of, self.image_splits, sha, split)
        if group:
            _note(self.group_split, self.group_splits, sha if group == sha else group, split)

    def splits(self, sha: str) -> set[str]:
        return self.image_splits.get(sha) or {self.split_of[sha]}

    def pairs(self) -> set[tuple[str, str]]:
        """(split, sha256) of every manifest row."""
        return {(split, sha) for sha in self.split_of for split in self.splits(sha)}


def _note(first: dict[str, str], several: dict[str, set[str]], key: str, split: str) -> None:
    had = first.setdefault(key, split)
    if had != split:
        several.setdefault(key, {had}).add(split)


def _scan_manifest(
    out: Path,
    listed: dict[str, str],
    index: dict[str, int] | None,
    active: dict[str, set[str]] | None,
    problems: list[str],
) -> _Scan:
    """One streamed pass: per-row problems, splits per image and group, takedown hits.

    A row cut short (a truncated copy) is a problem, not a crash.
    """
    scan = _Scan()
    splits = {s: s for s in SPLITS}  # one string per split, not one per row
    try:
        with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                if None in row or None in row.values() or not row.keys() >= MANIFEST_KEYS:
                    problems.append(f"manifest.csv line {reader.line_num} is incomplete")
                    continue
                sha, path = row["sha256"], row["path"]
                scan.place(sha, row.get("group", ""), splits.get(row["split"], row["split"]))
                if index is not None and index.get(row["wnid"]) != _int(row["class_index"]):
                    scan.row_problems.append(
                        f"{path}: class index {row['class_index']} is not {row['wnid']}"
                    )
                if path.startswith(SPLITS) and path not in listed:
                    scan.row_problems.append(f"manifest row not backed by a checked file: {path}")
                if active is not None and (
                    (row.get("url") and row["url"] in active["url"])
                    or (row.get("creator") and row["creator"] in active["creator"])
                ):
                    scan.flagged.add(sha)
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"manifest.csv is unreadable: {exc}")
    return scan


def _class_index(out: Path, problems: list[str]) -> dict[str, int] | None:
    try:
        classes = json.loads((out / "classes.json").read_text(encoding="utf-8"))
        return {str(c["wnid"]): int(c["index"]) for c in classes}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        problems.append("classes.json is unreadable or cut short")
        return None


def verify_export(out: Path, session: Session | None = None) -> VerifyReport:
    """Every problem of the export in ``out``; raises only when it is not an export."""
    if not out.is_dir():
        raise NotFound(f"The export folder {out} does not exist.")
    for name in ("manifest.csv", "classes.json", "checksums.sha256"):
        if not (out / name).is_file():
            raise InvalidInput(f"The folder {out} is not a synset export: it has no {name}.")
    report = VerifyReport(out=str(out))
    problems = report.problems
    try:
        recorded = json.loads((out / "export.json").read_text(encoding="utf-8"))["checksums"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = {}
        problems.append("export.json is missing or unreadable: the checksum list is unprotected")
    for name, digest in recorded.items():
        if (out / name).is_file() and sha_file(out / name) != digest:
            problems.append(f"{name} was changed after the export was written")
    listed: dict[str, str] = {}
    for line in (out / "checksums.sha256").read_text(encoding="utf-8").splitlines():
        digest, _, rel = line.partition("  ")
        if rel:
            listed[rel] = digest
    for rel, digest in sorted(listed.items()):
        path = out / rel
        if not path.is_file():
            problems.append(f"missing file: {rel}")
        elif sha_file(path) != digest:
            problems.append(f"checksum mismatch: {rel}")
        report.files_checked += 1
    problems.extend(check_croissant(out, listed))
    for top in OWNED:
        for path in sorted((out / top).rglob("*")) if (out / top).is_dir() else []:
            rel = path.relative_to(out).as_posix()
            if path.is_file() and rel not in listed:
                problems.append(f"file not in the export's checksums: {rel}")
    active = active_values(session) if session is not None else None
    scan = _scan_manifest(out, listed, _class_index(out, problems), active, problems)
    report.images = len(scan.split_of)
    for sha, splits in sorted(scan.image_splits.items()):
        problems.append(f"image {sha} is in several splits: {', '.join(sorted(splits))}")
    for group, splits in sorted(scan.group_splits.items()):
        problems.append(
            f"near-duplicate group {group} spans several splits: {', '.join(sorted(splits))}"
        )
    problems.extend(scan.row_problems)
    _check_shards(out, scan, listed, problems)
    if session is not None and active is not None:
        _check_database(session, scan, active, report)
    return report


def _check_shards(out: Path, scan: _Scan, listed: dict[str, str], problems: list[str]) -> None:
    shards = [rel for rel in listed if rel.startswith("webdataset/")]
    if not shards:
        return
    expected = scan.pairs()
    found: set[tuple[str, str]] = set()
    for rel in sorted(shards):
        split = Path(rel).name.split("-")[0]
        try:
            with tarfile.open(out / rel) as tar:
                for member in tar:
                    if member.name.endswith(".jpg"):
                        found.add((split, member.name.removesuffix(".jpg")))
        except (OSError, tarfile.TarError):
            problems.append(f"shard {rel} cannot be read as a tar file")
    for split, sha in sorted(found - expected):
        problems.append(f"shard sample {sha} ({split}) is not in the manifest")
    for split, sha in sorted(expected - found):
        problems.append(f"manifest image {sha} ({split}) is in no shard")


def _check_database(
    session: Session, scan: _Scan, active: dict[str, set[str]], report: VerifyReport
) -> None:
    """Takedowns since the export, and near-duplicate groups found since."""
    report.database_checked = True
    flagged = set(scan.flagged)
    if any(active.values()):  # else nothing is taken down: no query per image
        flagged |= taken_down_shas(session, scan.split_of)
    report.taken_down = sorted(flagged)
    for sha in report.taken_down:
        report.problems.append(f"image {sha} has been taken down since; export again")
    # Every grouped image of the database, streamed with its group's key; the export's
    # images among them say which splits each group spans now.
    now: dict[str, set[str]] = {}
    stmt = select(Image.sha256, group_key()).where(Image.dup_group.is_not(None))
    for sha, key in session.execute(stmt.execution_options(yield_per=5000)):
        if sha in scan.split_of:
            now.setdefault(key, set()).update(scan.splits(sha))
    for group, splits in sorted(now.items()):
        if len(splits) > 1:
            report.problems.append(
                f"images now grouped as near duplicates ({group}) span {', '.join(sorted(splits))}"
            )
