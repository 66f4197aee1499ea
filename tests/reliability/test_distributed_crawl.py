"""``synset crawl --cluster local:2``: synsets crawled on a Dask LocalCluster of two workers.

Against the real photo server and PostgreSQL: one database is crawled by a single
process, another by two Dask worker processes writing to it and its store. The
candidates, images, stored files and failure records must be identical.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from synset_builder.config import Settings
from tests.crawl_support import crawl_command, seed_resume_targets, snapshot, url_list
from tests.photo_server import PhotoServer

pytestmark = pytest.mark.slow


def test_cluster_crawl_equals_single_process(db_factory, tmp_path: Path) -> None:
    single = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "one")
    spread = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "two")
    with PhotoServer(delay=0.01) as server:
        names = server.names
        rows = [("n01440764", server.url(f"/missing/{i}.jpg")) for i in range(3)]
        rows += [("n01440764", server.url(f"/photos/{n}")) for n in names[:40]]
        rows += [("n01514668", server.url(f"/r/1/photos/{n}")) for n in names[30:60]]
        rows += [("n01514668", server.url(p)) for p in ("/same/a.jpg", "/same/b.jpg", "/html.jpg")]
        rows += [("n02084071", server.url(f"/r/2/photos/{n}")) for n in names[50:70]]
        urls = url_list(tmp_path / "urls.csv", rows)
        for cfg in (single, spread):
            seed_resume_targets(cfg)
        for cfg, extra in ((single, []), (spread, ["--cluster", "local:2"])):
            args, env = crawl_command(cfg, urls)
            done = subprocess.run(
                [*args, *extra], env=env, capture_output=True, text=True, timeout=240
            )
            assert done.returncode == 0, done.stderr[-3000:]
    straight, distributed = snapshot(single), snapshot(spread)
    assert len(straight["candidates"]) == 30 + 30 + 20
    assert {f[2] for f in straight["failures"]} >= {"http_404"}
    # Images shared by synsets (names 30..70 appear twice) are stored once in both runs.
    assert len(straight["images"]) < len(straight["candidates"])
    assert distributed == straight
