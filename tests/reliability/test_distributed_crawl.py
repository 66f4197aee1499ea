"""``synset crawl --cluster local:2``: downloads split by synset and result page over Dask.

Against the real photo server and PostgreSQL. One synset is searched on Openverse
(the photo server's) with three queries after a URL list whose files reappear in
the search results under other URLs (one of them slow to answer), so which URL
becomes a candidate and when the per-synset cap of 30 is reached depend on the
order rows are written in, not the order downloads finish. A single
process and a LocalCluster of two worker processes must leave the same candidates
(with rank and query), images, stored files, failure records and finished pages;
also after the cluster crawl is killed and run again. The work of that one synset
must reach both workers, and ``--per-host`` must hold for the two workers together.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from distributed import get_task_stream

from synset_builder.config import Settings
from synset_builder.crawl.fetch import FetchConfig
from synset_builder.crawl.plan import CrawlConfig
from synset_builder.crawl.run import crawl
from synset_builder.crawl.sources import make_source
from synset_builder.db.session import make_engine, session_scope
from synset_builder.distributed import cluster_runner
from tests.crawl_support import (
    MULTI_QUERY,
    cluster_crawl_command,
    cluster_url_rows,
    crawl_command,
    kill_when,
    seed_cluster_targets,
    snapshot,
    url_list,
)
from tests.photo_server import PhotoServer

pytestmark = pytest.mark.slow
CLUSTER = ("--cluster", "local:2")


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def _pair(db_factory, tmp_path: Path) -> tuple[Settings, Settings]:
    single = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "one")
    spread = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "two")
    for cfg in (single, spread):
        seed_cluster_targets(cfg)
    return single, spread


def test_cluster_crawl_equals_single_process(db_factory, tmp_path: Path) -> None:
    single, spread = _pair(db_factory, tmp_path)
    with PhotoServer(delay=0.01, slow_seconds=1.5) as server, ThreadPoolExecutor(1) as pool:
        urls = url_list(tmp_path / "urls.csv", cluster_url_rows(server))
        # The single process runs beside the cluster: separate databases and folders.
        reference = pool.submit(_run, *cluster_crawl_command(single, urls, server))
        _run(*cluster_crawl_command(spread, urls, server, *CLUSTER))
        reference.result()
        slow = server.url("/slow.jpg")
    straight, distributed = snapshot(single), snapshot(spread)
    per_synset = Counter(c[0] for c in straight["candidates"])
    assert per_synset == {"n01440764": 30, "n01514668": 30, "n02084071": 30}
    dog = [c for c in straight["candidates"] if c[0] == MULTI_QUERY[0]]
    assert {c[3] for c in dog} == {"urls", "openverse"}
    assert {c[4] for c in dog if c[3] == "openverse"} == {"n02", "n01"}
    # The URL list comes first in dog's stream: its copies win over Openverse's, also
    # the slow one, whose file Openverse's first page for "n01" gives long before.
    assert sum(1 for c in dog if c[3] == "urls") == 11 and any(c[2] == slow for c in dog)
    assert {f[2] for f in straight["failures"]} >= {"http_404", "not_an_image"}
    assert any(p[0] == MULTI_QUERY[0] and p[2] == "n02" for p in straight["pages"])
    assert distributed == straight


def test_one_synset_spreads_over_workers(db_factory, tmp_path: Path) -> None:
    """The units of one synset with several queries run on both workers."""
    with PhotoServer(delay=0.05, slow_seconds=0.5) as server:
        settings = Settings(
            database_url=db_factory.migrated("postgresql"),
            data_dir=tmp_path / "data",
            openverse_url=server.url("/openverse"),
            allow_private_networks=True,
        )
        seed_cluster_targets(settings)
        urls = url_list(tmp_path / "urls.csv", cluster_url_rows(server))
        sources = [make_source(f"urls:{urls}", settings), make_source("openverse", settings)]
        fetch = FetchConfig(user_agent="synset-builder-test/1", allow_private=True, retries=0)
        cfg = CrawlConfig(
            fetch, per_synset=30, concurrency=4, wnids=(MULTI_QUERY[0],), progress=False
        )
        engine = make_engine(settings.database_url)
        try:
            with (
                cluster_runner("local:2") as runner,
                get_task_stream(runner.client) as stream,
                session_scope(engine) as session,
            ):
                tallies = crawl(session, settings.data_dir, sources, cfg, runner)
        finally:
            engine.dispose()
    assert sum(t.downloaded for t in tallies.values()) == 30
    units = [t for t in stream.data if str(t["key"]).startswith(f"fetch-{MULTI_QUERY[0]}-")]
    assert len(units) >= 8
    assert len({t["worker"] for t in units}) == 2, "one synset's units ran on one worker"


def test_cluster_crawl_resumes_after_kill(db_factory, tmp_path: Path) -> None:
    """SIGKILL to the whole cluster crawl (driver and workers), then run it again."""
    single, spread = _pair(db_factory, tmp_path)
    with PhotoServer(delay=0.25, slow_seconds=1.5) as server, ThreadPoolExecutor(1) as pool:
        urls = url_list(tmp_path / "urls.csv", cluster_url_rows(server))
        args, env = cluster_crawl_command(spread, urls, server, *CLUSTER)
        at_kill = kill_when(args, env, spread, 15, group=True)
        assert 15 <= at_kill < 90
        # Slow photos only while the crawl is to be killed, so the kill lands mid-way;
        # the runs to the end leave the same rows at any speed, and the uninterrupted
        # single process runs beside the resumed cluster crawl.
        server.delay = 0.0
        reference = pool.submit(_run, *cluster_crawl_command(single, urls, server))
        _run(args, env)
        reference.result()
    assert snapshot(spread) == snapshot(single)


def test_per_host_limit_holds_across_workers(db_factory, tmp_path: Path) -> None:
    """--per-host 2 with two workers fetching 4 at a time: never 3 requests at once."""
    settings = Settings(database_url=db_factory.migrated("postgresql"), data_dir=tmp_path / "d")
    seed_cluster_targets(settings)
    # 0.1 s a photo keeps each request open far longer than the two workers take to
    # start the next ones (60 photos, two at a time: 3 s; at 0.2 s it was 6 s).
    with PhotoServer(delay=0.1) as server:
        rows = [("n01440764", server.url(f"/photos/{n}")) for n in server.names[:30]]
        rows += [("n01514668", server.url(f"/r/1/photos/{n}")) for n in server.names[30:60]]
        args, env = crawl_command(settings, url_list(tmp_path / "urls.csv", rows))
        args[args.index("--per-host") + 1] = "2"
        _run([*args, *CLUSTER], env)
        most = server.max_active
    assert Counter(c[0] for c in snapshot(settings)["candidates"]) == {
        "n01440764": 30,
        "n01514668": 30,
    }
    assert 1 <= most <= 2
