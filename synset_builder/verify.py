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
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Image
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.export_folder import sha_file
from synset_builder.export_select import group_keys
from synset_builder.splits import SPLITS
from synset_builder.takedown import active_values, taken_down_shas

OWNED = (*SPLITS, "webdataset")
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


def _read_manifest(out: Path, problems: list[str]) -> list[dict[str, str]]:
    """The complete rows; a row cut short (a truncated copy) is a problem, not a crash."""
    rows = []
    try:
        with (out / "manifest.csv").open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                if None in row or None in row.values() or not row.keys() >= MANIFEST_KEYS:
                    problems.append(f"manifest.csv line {reader.line_num} is incomplete")
                    continue
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"manifest.csv is unreadable: {exc}")
    return rows


def _class_index(out: Path, problems: list[str]) -> dict[str, int] | None:
    try:
        classes = json.loads((out / "classes.json").read_text(encoding="utf-8"))
        return {str(c["wnid"]): int(c["index"]) for c in classes}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        problems.append("classes.json is unreadable or cut short")
        return None


def _straddling(rows: list[dict[str, str]], key: str) -> dict[str, set[str]]:
    splits: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.get(key):
            splits[row[key]].add(row["split"])
    return {k: v for k, v in splits.items() if len(v) > 1}


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
    for top in OWNED:
        for path in sorted((out / top).rglob("*")) if (out / top).is_dir() else []:
            rel = path.relative_to(out).as_posix()
            if path.is_file() and rel not in listed:
                problems.append(f"file not in the export's checksums: {rel}")
    rows = _read_manifest(out, problems)
    report.images = len({r["sha256"] for r in rows})
    _check_rows(out, rows, listed, problems)
    _check_shards(out, rows, listed, problems)
    if session is not None:
        _check_database(session, rows, report)
    return report


def _check_rows(
    out: Path, rows: list[dict[str, str]], listed: dict[str, str], problems: list[str]
) -> None:
    index = _class_index(out, problems)
    for sha, splits in sorted(_straddling(rows, "sha256").items()):
        problems.append(f"image {sha} is in several splits: {', '.join(sorted(splits))}")
    for group, splits in sorted(_straddling(rows, "group").items()):
        problems.append(
            f"near-duplicate group {group} spans several splits: {', '.join(sorted(splits))}"
        )
    for row in rows:
        if index is not None and index.get(row["wnid"]) != _int(row["class_index"]):
            problems.append(f"{row['path']}: class index {row['class_index']} is not {row['wnid']}")
        path = row["path"]
        if path.startswith(SPLITS) and path not in listed:
            problems.append(f"manifest row not backed by a checked file: {path}")


def _check_shards(
    out: Path, rows: list[dict[str, str]], listed: dict[str, str], problems: list[str]
) -> None:
    shards = [rel for rel in listed if rel.startswith("webdataset/")]
    if not shards:
        return
    expected = {(r["split"], r["sha256"]) for r in rows}
    found: set[tuple[str, str]] = set()
    for rel in sorted(shards):
        split = Path(rel).name.split("-")[0]
        try:
            with tarfile.open(out / rel) as tar:
                for member in tar.getmembers():
                    if member.name.endswith(".jpg"):
                        found.add((split, member.name.removesuffix(".jpg")))
        except (OSError, tarfile.TarError):
            problems.append(f"shard {rel} cannot be read as a tar file")
    for split, sha in sorted(found - expected):
        problems.append(f"shard sample {sha} ({split}) is not in the manifest")
    for split, sha in sorted(expected - found):
        problems.append(f"manifest image {sha} ({split}) is in no shard")


def _check_database(session: Session, rows: list[dict[str, str]], report: VerifyReport) -> None:
    """Takedowns since the export, and near-duplicate groups found since."""
    report.database_checked = True
    active = active_values(session)
    flagged = taken_down_shas(session, (r["sha256"] for r in rows))
    for r in rows:
        if (
            r["sha256"] in active["sha256"]
            or (r["url"] and r["url"] in active["url"])
            or (r["creator"] and r["creator"] in active["creator"])
        ):
            flagged.add(r["sha256"])
    report.taken_down = sorted(flagged)
    for sha in report.taken_down:
        report.problems.append(f"image {sha} has been taken down since; export again")
    shas = sorted({r["sha256"] for r in rows})
    current: dict[str, str] = {}
    keys = group_keys(session)
    for start in range(0, len(shas), 500):
        stmt = select(Image.sha256, Image.dup_group).where(
            Image.sha256.in_(shas[start : start + 500]), Image.dup_group.is_not(None)
        )
        for sha, group in session.execute(stmt):
            current[sha] = keys[group]
    now = [{**r, "now": current.get(r["sha256"], "")} for r in rows]
    for group, splits in sorted(_straddling(now, "now").items()):
        report.problems.append(
            f"images now grouped as near duplicates ({group}) span {', '.join(sorted(splits))}"
        )
