"""``synset export``: accepted images -> stable splits in the layouts trainers read.

One function of (session, config): stream the entries into a scratch table
(``select``, ``spool``), place each near-duplicate group in one
split (``splits``), then one pass (``write``) renders each file once in
worker processes (``render``) and hands it to every requested layout
(``formats``); last come ``classes.json``, ``manifest.csv`` (streamed from
the spool in order), ``checksums.sha256``, the datasheet and ``export.json``, and
the export is recorded. Memory does not grow with the number of images beyond
the split assignment's few hundred bytes per image: every row lives in the spool.

Re-running into the same folder is cheap and safe: files already rendered with
the same pixel settings are reused (``.render-cache.csv``, appended as files are
written, so an interrupted export resumes), files that no longer belong (a
takedown, a class dropped) are removed, and the split of every earlier image is
kept (``splits`` explains how).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session

from synset_builder import __version__
from synset_builder.db.models import Export
from synset_builder.errors import InvalidInput
from synset_builder.export.atomic import atomic_write
from synset_builder.export.croissant import NAME as CROISSANT
from synset_builder.export.croissant import Description, build, described_file, write_croissant
from synset_builder.export.datasheet import Block, SheetStats, write_datasheet
from synset_builder.export.datasheet_figures import shown_classes
from synset_builder.export.folder import (
    check_out_folder,
    previous_splits,
    remove_if_empty,
    remove_stale,
    sha_file,
)
from synset_builder.export.formats import (
    DEFAULT_SHARD_SIZE,
    MANIFEST_COLUMNS,
    WRITERS,
    write_csv,
    write_lines,
)
from synset_builder.export.hf import LabelSpace, label_names
from synset_builder.export.labels import Level
from synset_builder.export.rai import rai_fields
from synset_builder.export.render import RenderSpec, require_face_detector
from synset_builder.export.select import Selection, select_entries
from synset_builder.export.splits import Item, SplitSpec, assign_splits, missing_line
from synset_builder.export.spool import ExportSpool, disk_errors
from synset_builder.export.write import ExportReport, Plan, start_workers_early, write_files

__all__ = ["ExportConfig", "ExportReport", "run_export"]


@dataclass(frozen=True)
class ExportConfig:
    out: Path
    formats: tuple[str, ...] = ("imagefolder",)
    split: SplitSpec = field(default_factory=SplitSpec)
    level: Level = field(default_factory=Level)
    multi_label: bool = False
    min_per_class: int = 1
    max_per_class: int | None = None
    licenses: frozenset[str] | None = None
    render: RenderSpec = field(default_factory=RenderSpec)
    shard_size: int = DEFAULT_SHARD_SIZE
    workers: int = 0  # 0: one per CPU core
    samples_per_class: int = 8
    # Where takedown requests go (croissant.json's release plan): settings.contact.
    contact: str = "https://github.com/synset-builder/synset-builder"

    def params(self) -> dict[str, object]:
        return {
            "formats": list(self.formats),
            "split": self.split.as_json(),
            "level": self.level.describe(),
            "classes": sorted(self.level.classes),
            "multi_label": self.multi_label,
            "min_per_class": self.min_per_class,
            "max_per_class": self.max_per_class,
            "licenses": sorted(self.licenses) if self.licenses is not None else None,
            "render": self.render.as_json(),
            "shard_size": self.shard_size,
        }


def run_export(
    session: Session, data_dir: Path, config: ExportConfig, *, database: str
) -> ExportReport:
    """Write one export; safe to repeat, and to resume after an interruption."""
    unknown = [f for f in config.formats if f not in WRITERS]
    if unknown or not config.formats:
        raise InvalidInput(
            f"Unknown export format {unknown[0] if unknown else ''!r}; "
            f"choose from {', '.join(WRITERS)}."
        )
    if config.render.blur_faces:
        require_face_detector()
    created = check_out_folder(config.out)
    try:
        with ExportSpool() as spool, disk_errors(spool.path):
            return _export(session, data_dir, config, spool, database)
    except BaseException:
        remove_if_empty(created)
        raise


def _place(spool: ExportSpool, config: ExportConfig, report: ExportReport) -> None:
    """Assign every image its split (recorded in the spool); ``report`` gets how many
    earlier images moved and which classes are missing from a split."""
    keys: list[int] = []
    items: list[Item] = []
    for key, sha, group, labels in spool.items():
        keys.append(key)
        items.append(Item(sha, group, labels))
    assignment = assign_splits(items, config.split, previous_splits(config.out, config.split))
    split = assignment.split
    spool.set_splits((k, split[i.sha256], i.labels) for k, i in zip(keys, items, strict=True))
    report.moved = assignment.moved
    report.missing_from_splits = {w: list(s) for w, s in assignment.missing.items()}
    if assignment.missing:
        report.warnings.append(missing_line(assignment.missing, spool.sizes))


def _select(
    session: Session, data_dir: Path, config: ExportConfig, spool: ExportSpool
) -> Selection:
    """Stream the accepted entries into the spool; an empty selection is a user error
    that says why nothing was left, not an empty export."""
    sel: Selection = select_entries(
        session,
        data_dir,
        spool,
        level=config.level,
        multi_label=config.multi_label,
        licenses=config.licenses,
        min_per_class=config.min_per_class,
        max_per_class=config.max_per_class,
        seed=config.split.seed,
    )
    if not sel.total:
        raise InvalidInput(_why_empty(sel, config))
    return sel


def _why_empty(sel: Selection, config: ExportConfig) -> str:
    """The one line an empty export ends with: what removed the accepted images, so the
    fix it suggests is the one that applies (consensus only when nothing is accepted)."""
    why: list[str] = []
    if sel.licences_left_out:
        have = ", ".join(
            f"{k or 'none recorded'} {n}" for k, n in sel.licences_left_out.most_common(5)
        )
        kept = ",".join(sorted(config.licenses or ()))
        why.append(f"--licenses {kept} keeps none of them (their licences: {have})")
    if sel.dropped_classes:
        largest = max(sel.dropped_classes.values())
        why.append(
            f"all {len(sel.dropped_classes)} classes have fewer than --min-per-class "
            f"{config.min_per_class} images (the largest has {largest})"
        )
    if sel.outside:
        why.append(f"{sel.outside} are outside the classes of --level/--classes")
    if sel.ambiguous:
        why.append(f"{len(sel.ambiguous)} are accepted for unrelated classes (--multi-label)")
    if sel.taken_down:
        why.append(f"{sel.taken_down} are taken down")
    if why:
        return "Nothing to export: of the accepted images, " + "; ".join(why) + "."
    return "Nothing to export: no image is accepted yet; run 'synset consensus' first."


def _write_classes(
    out: Path, sel: Selection, names: list[str], index: dict[str, int]
) -> list[dict[str, object]]:
    """``classes.json``, in label order; its rows also feed the datasheet."""
    # "label": the name the Hugging Face layouts and croissant.json give the class
    # (its name, unless another class shares it).
    class_rows = [
        {
            "index": i, "wnid": w, "name": sel.classes[w][0], "gloss": sel.classes[w][1],
            "label": names[i],
        }
        for w, i in index.items()
    ]  # fmt: skip
    atomic_write(
        out / "classes.json", json.dumps(class_rows, indent=1, ensure_ascii=False).encode()
    )
    return class_rows


def _write_croissant(
    spool: ExportSpool,
    config: ExportConfig,
    stats: SheetStats,
    report: ExportReport,
    blocks: list[Block],
) -> None:
    """``croissant.json`` over the files written so far, then listed like them."""
    out = config.out
    about = Description(
        name=out.resolve().name or "export",
        summary=(
            f"{stats.images} images in {report.classes} classes ("
            + ", ".join(f"{s} {n}" for s, n in report.splits.items())
            + f"), level {config.level.describe()}, formats {', '.join(config.formats)}; "
            "see datasheet.md."
        ),
        created=datetime.now(UTC).date().isoformat(),
        version=__version__,
        contact=config.contact,
        licences=stats.licences,
        rai=rai_fields(blocks, stats, report.as_json(), contact=config.contact),
    )
    listed = [(rel, digest) for rel, digest in spool.files() if described_file(rel)]
    write_croissant(out, build(config.formats, report.splits, listed, about))
    spool.add_file(CROISSANT, sha_file(out / CROISSANT))


def _write_meta(
    session: Session,
    config: ExportConfig,
    sel: Selection,
    report: ExportReport,
    database: str,
    checksums: dict[str, str],
) -> None:
    """``export.json``: what produced the export and from which database state, so a
    consumer can tell two exports apart without diffing them."""
    meta = {
        "tool": "synset-builder",
        "version": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        "database": database,
        "schema_revision": MigrationContext.configure(session.connection()).get_current_revision(),
        "params": config.params(),
        "seed": config.split.seed,
        "counts": report.as_json(),
        "ambiguous": [{"sha256": s, "wnids": w} for s, w in sel.ambiguous],
        "checksums": checksums,
    }
    atomic_write(
        config.out / "export.json", json.dumps(meta, indent=1, ensure_ascii=False).encode()
    )


def _export(
    session: Session, data_dir: Path, config: ExportConfig, spool: ExportSpool, database: str
) -> ExportReport:
    out = config.out
    start_workers_early(config.render, config.workers)
    sel = _select(session, data_dir, config, spool)
    report = ExportReport(out=out, taken_down=sel.taken_down)
    _place(spool, config, report)
    classes = sorted(sel.classes)
    index = {wnid: i for i, wnid in enumerate(classes)}
    names = label_names([(w, sel.classes[w][0]) for w in classes])
    plan = Plan(
        out=out,
        formats=config.formats,
        render=config.render,
        shard_size=config.shard_size,
        workers=config.workers,
        multi_label=config.multi_label,
        samples_per_class=config.samples_per_class,
        sample_classes=frozenset(shown_classes(sel.sizes)),
        labels=LabelSpace(names, config.multi_label),
    )
    stats = write_files(spool, plan, index, report)
    class_rows = _write_classes(out, sel, names, index)
    manifest_sha = write_csv(out / "manifest.csv", MANIFEST_COLUMNS, spool.manifest_rows())
    report.classes, report.images, report.splits = len(classes), stats.images, stats.splits()
    report.ambiguous, report.dropped_classes = len(sel.ambiguous), sel.dropped_classes
    sheet, blocks = write_datasheet(
        session, out, sel, stats, class_rows, report=report.as_json(), params=config.params()
    )
    for name in ["classes.json", "manifest.csv", *sheet]:
        spool.add_file(name, sha_file(out / name))
    _write_croissant(spool, config, stats, report, blocks)
    listing_sha = write_lines(
        out / "checksums.sha256", (f"{digest}  {rel}\n" for rel, digest in spool.files())
    )
    report.removed_files = remove_stale(out, spool)
    if "imagefolder" in config.formats:
        _class_folders(out, classes, report.splits)
    checksums = {
        "manifest.csv": manifest_sha,
        "classes.json": sha_file(out / "classes.json"),
        "checksums.sha256": listing_sha,
    }
    # The row first, so export.json can name it (the id `export --json` prints); a
    # failure writing export.json rolls the row back with the session.
    record = Export(
        out_path=str(out.resolve()),
        format=",".join(config.formats),
        params=config.params(),
        seed=config.split.seed,
        manifest_sha256=manifest_sha,
    )
    session.add(record)
    session.flush()
    report.export_id = record.id
    _write_meta(session, config, sel, report, database, checksums)
    return report


def _class_folders(out: Path, classes: list[str], splits: dict[str, int]) -> None:
    """Every class's folder in every split that has images, empty where the class has none.

    torchvision's ImageFolder numbers the folders it finds in sorted order, and
    ``classes.json`` numbers the wnids in sorted order: with every folder present the
    two agree in every split. A missing folder would silently shift the labels of every
    later class; an empty one makes ImageFolder stop with a message naming it (unless
    ``allow_empty=True``), and the export warns about it.
    """
    for split in splits:
        for wnid in classes:
            (out / split / wnid).mkdir(parents=True, exist_ok=True)
