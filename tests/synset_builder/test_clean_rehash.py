"""Upgrading a database whose hashes an older definition wrote (migration 0022).

The perceptual hashes changed definition (``fingerprint.HASH_VERSION``); hashes of
two definitions must never be compared, so after ``synset init`` upgrades a
database the next ``synset clean`` rehashes every old row, keeps each verdict, and
can stop and resume: a committed batch is done. Real migrations on both backends,
real photos, a real older row written with the schema of revision 0021.
"""

from __future__ import annotations

import json
from pathlib import Path

import imagehash
from PIL import Image as PILImage
from sqlalchemy import select, text

from synset_builder.clean.batches import hash_batch
from synset_builder.clean.fingerprint import HASH_VERSION, fingerprint, to_int64
from synset_builder.clean.run import run_clean
from synset_builder.config.clean import CleanConfig
from synset_builder.db import migrate
from synset_builder.db.models import Image, ImageHash
from synset_builder.db.session import make_engine, session_scope
from tests import photo_variants as pv
from tests.clean_db import candidate, synset
from tests.conftest import DatabaseFactory

CFG = CleanConfig(workers=1)


def _old_hash(path: Path) -> int:
    """What version 1 stored: imagehash's pHash of a 1/4-scale decode."""
    with PILImage.open(path) as im:
        im.draft("RGB", (64, 64))
        return to_int64(imagehash.phash(im.convert("L")))


def test_old_hashes_are_rehashed_once_and_resumably(
    db_factory: DatabaseFactory, backend: str, tmp_path: Path, photos: list[Path]
) -> None:
    url = db_factory.empty(backend)
    migrate.upgrade(url, "0021_gold_matrix")
    engine = make_engine(url)
    data = tmp_path / "data"
    blobs = [photos[5].read_bytes(), pv.variant(photos[5], "crop5"), photos[6].read_bytes(),
             pv.blurred(photos[7])]  # fmt: skip
    with session_scope(engine) as s:
        dog = synset(s, "n02084071")
        ids = [candidate(s, data, blob, dog).image_id for blob in blobs]
        paths = {i: data / s.get(Image, i).path for i in ids}
    # What the older code left: verdicts, and version-less hash rows of its definition.
    with engine.begin() as conn:
        for i in ids:
            old = _old_hash(paths[i])
            conn.execute(text("UPDATE image SET quality = 'ok', sharpness = 1.0 WHERE id = :i"),
                         {"i": i})  # fmt: skip
            conn.execute(
                text("INSERT INTO image_hash (image_id, algo, \"full\", crop90, crop80, mirror)"
                     " VALUES (:i, 'phash', :h, :h, :h, :h)"),
                {"i": i, "h": old},
            )  # fmt: skip
    migrate.upgrade(url)
    with session_scope(engine) as s:
        assert set(s.scalars(select(ImageHash.version))) == {1}
    # A run stopped after its first committed batch (a worker's batch commits alone).
    assert hash_batch(url, data, CFG, ids[:1]) == (1, 0)
    with session_scope(engine) as s:
        versions = dict(s.execute(select(ImageHash.image_id, ImageHash.version)).all())
        assert versions == {ids[0]: HASH_VERSION, **{i: 1 for i in ids[1:]}}
        report = run_clean(s, data, CFG)
        assert report.hashed == len(ids) - 1  # the rest, not the batch already done
    with session_scope(engine) as s:
        rows = {r.image_id: r for r in s.scalars(select(ImageHash))}
        assert len(rows) == len(ids) and {r.version for r in rows.values()} == {HASH_VERSION}
        for i in ids:
            fp = fingerprint(paths[i])
            r = rows[i]
            assert (r.full, r.crop90, r.crop80, r.mirror) == fp.hashes
            image = s.get(Image, i)
            # The verdict stays (the blurred copy was judged ok before); the facts are new.
            assert image.quality == "ok" and image.sharpness == fp.sharpness
            assert image.phash == fp.hashes[0]
        # The crop found again as a near duplicate with the new hashes.
        assert s.get(Image, ids[0]).dup_group == s.get(Image, ids[1]).dup_group is not None
        again = run_clean(s, data, CFG)
        assert again.hashed == 0 and again.changed == 0
    engine.dispose()


def test_a_dry_run_of_an_older_version_is_not_reused(
    session, tmp_path: Path, photos: list[Path]
) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    candidate(session, data, photos[8].read_bytes(), dog)
    old = data / "fingerprints" / "phash.jsonl"  # version 1's kept file
    old.parent.mkdir(parents=True)
    sha = session.scalar(select(Image.sha256))
    facts = {"sha256": sha, "width": 500, "height": 375, "frames": 1, "greyscale": False,
             "sharpness": 1.0, "spread": 100.0, "background": 0.1, "hashes": [1, 2, 3, 4],
             "error": None}  # fmt: skip
    old.write_text(json.dumps(facts) + "\n")
    report = run_clean(session, data, CFG)
    assert (report.hashed, report.reused) == (1, 0)
    assert (
        session.scalar(select(ImageHash.full))
        == fingerprint(data / session.scalar(select(Image.path))).hashes[0]
    )
