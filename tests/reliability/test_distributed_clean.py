"""``synset clean --cluster local:2``: hashing on a Dask LocalCluster of two worker processes.

Two PostgreSQL databases get the same real photos (with near duplicates, a tiny
and a blurred picture, a file broken on disk); one is cleaned by a single-process
run, the other with ``--cluster local:2``. The final image, hash and candidate rows
must be identical.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from synset_builder.config import Settings
from synset_builder.db.models import Candidate, Image, ImageHash, Synset
from synset_builder.db.session import make_engine, session_scope
from tests.clean_db import broken_candidate, candidate, synset
from tests.photo_variants import blurred, tiny, variant

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")

pytestmark = pytest.mark.slow


def _fill(cfg: Settings, photos: list[Path]) -> None:
    engine = make_engine(cfg.database_url)
    with session_scope(engine) as s:
        dog = synset(s, "n02084071")
        whippet = synset(s, "n02091134", dog)
        cat = synset(s, "n02121808")
        for photo in photos[:40]:
            candidate(s, cfg.data_dir, photo.read_bytes(), whippet)
        for photo, name in zip(photos[:6], ["resize50", "crop5", "mirror"] * 2, strict=True):
            candidate(s, cfg.data_dir, variant(photo, name), whippet if name != "mirror" else cat)
        candidate(s, cfg.data_dir, tiny(photos[41]), dog)
        candidate(s, cfg.data_dir, blurred(photos[42]), dog)
        broken_candidate(s, cfg.data_dir, photos[43].read_bytes()[:3000], dog)
    engine.dispose()


def _clean(cfg: Settings, *extra: str) -> None:
    env = {**os.environ, "SYNSET_DATABASE_URL": cfg.database_url,
           "SYNSET_DATA_DIR": str(cfg.data_dir)}  # fmt: skip
    done = subprocess.run(
        [SYNSET, "clean", "--json", *extra], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _state(cfg: Settings) -> dict[str, list]:
    engine = make_engine(cfg.database_url)
    try:
        with session_scope(engine) as s:
            sha = dict(s.execute(select(Image.id, Image.sha256)).all())
            wnid = dict(s.execute(select(Synset.id, Synset.wnid)).all())
            cand_key = {
                c.id: (wnid[c.synset_id], sha[c.image_id]) for c in s.scalars(select(Candidate))
            }
            images = sorted(
                (i.sha256, i.quality, i.quality_reason, i.phash, i.greyscale,
                 round(i.sharpness or 0, 6), i.reference_match)
                for i in s.scalars(select(Image))
            )  # fmt: skip
            hashes = sorted(
                (sha[h.image_id], h.algo, h.full, h.crop90, h.crop80, h.mirror)
                for h in s.scalars(select(ImageHash))
            )
            cands = sorted(
                (*cand_key[c.id], cand_key.get(c.near_duplicate_of))
                for c in s.scalars(select(Candidate))
            )
    finally:
        engine.dispose()
    return {"images": images, "hashes": hashes, "candidates": cands}


def test_cluster_clean_equals_single_process(db_factory, photos, tmp_path) -> None:
    single = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "one")
    spread = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "two")
    for cfg in (single, spread):
        _fill(cfg, photos)
    _clean(single)
    _clean(spread, "--cluster", "local:2")
    straight, distributed = _state(single), _state(spread)
    assert len(straight["hashes"]) >= 45
    assert any(c[2] is not None for c in straight["candidates"]), "no near duplicate found"
    assert any(i[1] == "rejected" for i in straight["images"])
    assert distributed == straight


def test_bad_cluster_spec_is_one_line(cli) -> None:
    done = cli("clean", "--cluster", "spark://x")
    assert done.code == 2 and "Unknown cluster" in done.err
    done = cli("clean", "--cluster", "local:zero")
    assert done.code == 2 and "local:N" in done.err
