"""What hashing one image writes, and the Dask tasks that write it on the workers.

The per-image part of the clean stage (decode, hashes, quality verdict) depends on
that image alone, so its rows can be written by whoever computed them, in any
order: a one-process run writes them from the driver, ``synset clean --cluster``
from the workers, each committing its own batch of image ids. Both build the rows
with :func:`rows_for`, so they are the same. What depends on the whole collection
(near-duplicate groups, representatives, conflicts) stays on the driver and runs
once every batch is written (:mod:`synset_builder.clean.run`). A dry run writes no
rows but keeps its fingerprints in ``DATA_DIR/fingerprints/ALGO.vN.jsonl``
(:func:`keep_fingerprints`), so the run that follows does not decode again.

Hashes carry the version of their definition (``fingerprint.HASH_VERSION``): an
image whose stored hashes are of another version is hashed again, like one never
hashed, and its row replaced, so an upgraded database is rehashed by the next
``synset clean`` (resumably: each committed batch is done) and never compares hashes
of two definitions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import fields
from functools import partial
from pathlib import Path

from sqlalchemy import ColumnElement, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from synset_builder.clean.fingerprint import HASH_VERSION, Fingerprint, fingerprint
from synset_builder.clean.quality import verdict
from synset_builder.config.clean import CleanConfig
from synset_builder.db.models import Image, ImageHash
from synset_builder.db.session import session_scope
from synset_builder.distributed import BatchRunner, worker_engine, worker_url
from synset_builder.progress import phase

Row = dict[str, object]
# Rows written (and, on real runs, committed) at once; fingerprints kept at once.
KEEP_EVERY = 500
# The scalar facts of a fingerprint, with their types, as a kept line holds them.
# A line written before a field existed lacks it, and that image is hashed again.
_KEPT_FIELDS = {
    f.name: type(f.default) for f in fields(Fingerprint) if f.name not in ("hashes", "error")
}


def image_file(data_dir: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else data_dir / p


def pending(cfg: CleanConfig) -> ColumnElement[bool]:
    """Images never looked at, or without this algorithm's hashes of the current version.

    Unreadable ones aside: they have no hashes and are not decoded again.
    """
    hashed = exists().where(
        ImageHash.image_id == Image.id,
        ImageHash.algo == cfg.hash,
        ImageHash.version == HASH_VERSION,
    )
    unreadable = Image.quality_reason.is_not(None) & Image.quality_reason.startswith("unreadable")
    return Image.quality.is_(None) | (~hashed & ~unreadable)


def is_missing(fp: Fingerprint) -> bool:
    """Not a verdict: the data folder may just be the wrong one; looked for next run."""
    return fp.error is not None and fp.error.startswith("missing")


def rows_for(
    image_id: int, quality: str | None, fp: Fingerprint, cfg: CleanConfig
) -> tuple[Row | None, Row | None]:
    """The image update and the image_hash row one fingerprint gives (None: nothing).

    An image judged before (rehashed for another algorithm or hash version) keeps
    its verdict, a decision already explained; its measured facts (sharpness,
    greyscale) are those of the current fingerprint, so that choosing the best copy
    of a duplicate group compares like with like.
    """
    if is_missing(fp):
        return None, None
    update_row: Row = {"id": image_id}
    hash_row: Row | None = None
    if quality is None:
        reason = verdict(fp, cfg)
        update_row["quality"] = "ok" if reason is None else "rejected"
        update_row["quality_reason"] = reason
    if fp.error is None:
        update_row["greyscale"] = fp.greyscale
        update_row["sharpness"] = fp.sharpness
        full, crop90, crop80, mirror = fp.hashes
        hash_row = {"image_id": image_id, "algo": cfg.hash, "version": HASH_VERSION,
                    "full": full, "crop90": crop90, "crop80": crop80,
                    "mirror": mirror}  # fmt: skip
        if cfg.hash == "phash":
            update_row["phash"] = full
    return (update_row if len(update_row) > 1 else None), hash_row


def kept_file(data_dir: Path, algo: str) -> Path:
    """Per hash version: a dry run's fingerprints of an older version are not reused."""
    return data_dir / "fingerprints" / f"{algo}.v{HASH_VERSION}.jsonl"


def read_kept(data_dir: Path, algo: str) -> dict[str, Fingerprint]:
    """Fingerprints a dry run computed, by sha256: facts about the bytes, not decisions.

    ``clean --dry-run`` changes nothing in the database, yet decoding and hashing
    is most of its time; keeping what it learnt lets the real run skip it. The file
    is append-only JSON lines; a line that is cut short or malformed is skipped
    (that image is simply hashed again).
    """
    kept: dict[str, Fingerprint] = {}
    try:
        lines = kept_file(data_dir, algo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return kept
    for line in lines.splitlines():
        try:
            row = json.loads(line)
            facts = {k: t(row[k]) for k, t in _KEPT_FIELDS.items()}
            hashes = tuple(int(h) for h in row["hashes"])
            error = row["error"]
            if len(hashes) != 4 or not (error is None or isinstance(error, str)):
                continue
            sha = str(row["sha256"])
        except (ValueError, TypeError, KeyError, OverflowError):
            continue
        kept[sha] = Fingerprint(**facts, hashes=hashes, error=error)  # type: ignore[arg-type]
    return kept


def keep_fingerprints(data_dir: Path, algo: str, found: list[tuple[str, Fingerprint]]) -> None:
    """Append a dry run's fingerprints (missing files have none to keep); best effort."""
    lines = [
        json.dumps(
            {
                "sha256": sha,
                **{k: getattr(fp, k) for k in _KEPT_FIELDS},
                "hashes": list(fp.hashes),
                "error": fp.error,
            }
        )
        for sha, fp in found
        if not is_missing(fp)
    ]
    if not lines:
        return
    path = kept_file(data_dir, algo)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    except OSError:
        return  # a read-only data folder: the dry run still reports; the next run hashes


def write_rows(session: Session, updates: list[Row], hashes: list[Row]) -> None:
    """Bulk-write one batch; rows are grouped by key set, as bulk UPDATE needs.

    Hash rows replace those of an older version (deleted first: one statement, and
    the same on SQLite and PostgreSQL).
    """
    by_keys: dict[tuple[str, ...], list[Row]] = defaultdict(list)
    for row in updates:
        by_keys[tuple(sorted(row))].append(row)
    for rows in by_keys.values():
        session.execute(update(Image), rows)
    by_algo: dict[object, list[object]] = defaultdict(list)
    for row in hashes:
        by_algo[row["algo"]].append(row["image_id"])
    for algo, ids in by_algo.items():
        session.execute(
            delete(ImageHash).where(ImageHash.algo == algo, ImageHash.image_id.in_(ids))
        )
    if hashes:
        session.execute(insert(ImageHash), hashes)


def write_fingerprints(
    session: Session,
    found: Iterator[tuple[int, str | None, Fingerprint]],
    cfg: CleanConfig,
    commit: bool,
) -> None:
    """Write verdicts and hashes in batches, committing each on real runs (streamed)."""
    updates: list[dict[str, object]] = []
    hashes: list[dict[str, object]] = []
    for image_id, quality, fp in found:
        update_row, hash_row = rows_for(image_id, quality, fp, cfg)
        updates += [update_row] if update_row else []
        hashes += [hash_row] if hash_row else []
        if len(updates) + len(hashes) >= KEEP_EVERY:
            write_rows(session, updates, hashes)
            updates, hashes = [], []
            if commit:  # keep progress through a crash
                session.commit()
    write_rows(session, updates, hashes)  # the caller commits the last batch


def hash_batch(
    database_url: str, data_dir: Path, cfg: CleanConfig, ids: list[int]
) -> tuple[int, int]:
    """On a worker: hash a batch of images and commit their rows; (hashed, missing).

    The batch is re-read under the same filter as the driver's, so a batch Dask runs
    again (its worker was lost after the commit) finds nothing left to write.
    """
    hashed = missing = 0
    with session_scope(worker_engine(database_url)) as session:
        todo = session.execute(
            select(Image.id, Image.path, Image.quality)
            .where(Image.id.in_(ids), pending(cfg))
            .order_by(Image.id)
        ).all()
        updates: list[Row] = []
        hashes: list[Row] = []
        for image_id, path, quality in todo:
            fp = fingerprint(image_file(data_dir, path), cfg.hash)
            if is_missing(fp):
                missing += 1
                continue
            hashed += 1
            update_row, hash_row = rows_for(image_id, quality, fp, cfg)
            updates += [update_row] if update_row else []
            hashes += [hash_row] if hash_row else []
        write_rows(session, updates, hashes)
    return hashed, missing


def hash_on_cluster(
    session: Session, runner: BatchRunner, data_dir: Path, cfg: CleanConfig, ids: list[int]
) -> tuple[int, int]:
    """Send the images to hash to the workers in batches; they write; (hashed, missing).

    The driver commits first: it must hold no lock (a ``--keep`` update) on rows a
    worker is about to update, and it reads the workers' rows afterwards.
    """
    session.commit()
    database_url = worker_url(session)
    size = runner.batch_size
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    task = partial(hash_batch, database_url, data_dir, cfg)
    hashed = missing = 0
    with phase(len(ids), "hash", "img") as bar:
        for batch, (h, m) in zip(batches, runner.map(task, batches), strict=True):
            hashed, missing = hashed + h, missing + m
            bar.update(len(batch))
    return hashed, missing
