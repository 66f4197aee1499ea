"""``synset clean --cluster local:2``: a Dask LocalCluster of two worker processes.

The workers hash image batches and write their verdicts and hashes to the database
themselves; the driver then groups near duplicates over all of them. Two PostgreSQL
databases get the same real photos (with near duplicates, a tiny and a blurred
picture, a file broken on disk); one is cleaned by a single-process run, the other
with ``--cluster local:2``. The final image, hash and candidate rows must be
identical, and a dry run on the cluster must write nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synset_builder.config import Settings
from synset_builder.db.session import make_engine, session_scope
from tests.clean_db import broken_candidate, candidate, synset
from tests.cluster_support import clean_command, clean_state
from tests.photo_variants import blurred, tiny, variant

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


def test_cluster_clean_equals_single_process(db_factory, photos, tmp_path) -> None:
    single = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "one")
    spread = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "two")
    for cfg in (single, spread):
        _fill(cfg, photos)
    before = clean_state(spread)
    dry = clean_command(spread, "--cluster", "local:2", "--dry-run")
    assert dry["dry_run"] and dry["hashed"] >= 45
    assert clean_state(spread) == before, "a dry run on the cluster wrote rows"
    clean_command(single)
    clean_command(spread, "--cluster", "local:2")
    straight, distributed = clean_state(single), clean_state(spread)
    assert len(straight["hashes"]) >= 45
    assert any(c[2] is not None for c in straight["candidates"]), "no near duplicate found"
    assert any(i[1] == "rejected" for i in straight["images"])
    assert distributed == straight


def test_bad_cluster_spec_is_one_line(cli) -> None:
    done = cli("clean", "--cluster", "spark://x")
    assert done.code == 2 and "Unknown cluster" in done.err
    done = cli("clean", "--cluster", "local:zero")
    assert done.code == 2 and "local:N" in done.err
