"""Helpers for crawl tests: target synsets with queries, URL lists, run a crawl."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.crawl.fetch import FetchConfig
from synset_builder.crawl.plan import CrawlConfig
from synset_builder.crawl.records import Tally
from synset_builder.crawl.run import crawl
from synset_builder.crawl.sources import make_source
from synset_builder.db.models import Candidate, CrawlPage, FetchFailure, Image, Query, Synset
from synset_builder.db.session import make_engine, session_scope
from tests.photo_server import PhotoServer

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")


def add_target(session: Session, wnid: str, name: str, queries: Sequence[str] = ()) -> Synset:
    """A target synset and its active queries, as the hierarchy stage would leave them."""
    synset = Synset(wnid=wnid, name=name, lemmas=[name], gloss="", target=True)
    session.add(synset)
    session.flush()
    for text in queries:
        session.add(Query(synset_id=synset.id, text=text))
    session.commit()
    return synset


def url_list(path: Path, rows: Sequence[tuple[str, str]]) -> Path:
    path.write_text(
        "wnid,url,license,creator\n" + "".join(f"{w},{u},cc0,someone\n" for w, u in rows)
    )
    return path


def run_crawl(
    settings: Settings,
    specs: Sequence[str],
    *,
    fetch: dict | None = None,
    **cfg: object,
) -> dict[str, Tally]:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            fcfg = FetchConfig(
                user_agent="synset-builder-test/1 (+tests)",
                **{"read_timeout": 5.0, "backoff": 0.05, **(fetch or {})},
            )
            sources = [make_source(s, settings) for s in specs]
            return crawl(
                session,
                settings.data_dir,
                sources,
                CrawlConfig(fetch=fcfg, progress=False, **cfg),  # type: ignore[arg-type]
            )
    finally:
        engine.dispose()


def snapshot(settings: Settings) -> dict[str, object]:
    """Everything a crawl leaves behind, without ids and timestamps."""
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as s:
            wnid = {i: w for i, w in s.execute(select(Synset.id, Synset.wnid))}
            sha = {i: h for i, h in s.execute(select(Image.id, Image.sha256))}
            cands = sorted(
                (wnid[c.synset_id], sha[c.image_id], c.url, c.source, c.query, c.rank, c.license)
                for c in s.scalars(select(Candidate))
            )
            images = sorted(
                (i.sha256, i.path, i.width, i.height, i.format, i.bytes)
                for i in s.scalars(select(Image))
            )
            fails = sorted(
                (wnid[f.synset_id], f.url, f.reason, f.attempts, f.resolved)
                for f in s.scalars(select(FetchFailure))
            )
            pages = sorted(
                (wnid[p.synset_id], p.source, p.query, p.page, p.hits, p.last)
                for p in s.scalars(select(CrawlPage))
            )
    finally:
        engine.dispose()
    root = settings.data_dir
    files = sorted(str(p.relative_to(root)) for p in (root / "images").rglob("*") if p.is_file())
    leftovers = sorted(p.name for p in (root / "tmp").glob("*")) if (root / "tmp").exists() else []
    return {
        "candidates": cands,
        "images": images,
        "failures": fails,
        "pages": pages,
        "files": files,
        "tmp": leftovers,
    }


# --- interrupted crawls (kill -9 and run again) ------------------------------------------

RESUME_TARGETS = (("n01440764", "tench"), ("n01514668", "cock"), ("n02084071", "dog"))


def seed_resume_targets(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        for wnid, name in RESUME_TARGETS:
            add_target(session, wnid, name)
    engine.dispose()


def resume_url_rows(server: PhotoServer) -> list[tuple[str, str]]:
    """tench: every photo and a 404 every tenth; cock: redirects, duplicates, an HTML
    page; dog: a slice. Per-synset 30 stops tench and cock part-way."""
    names = server.names
    rows = []
    for i, name in enumerate(names):
        rows.append(("n01440764", server.url(f"/photos/{name}")))
        if i % 10 == 0:
            rows.append(("n01440764", server.url(f"/missing/{i}.jpg")))
    rows += [("n01514668", server.url(f"/r/1/photos/{n}")) for n in reversed(names)]
    rows += [("n01514668", server.url(p)) for p in ("/same/a.jpg", "/same/b.jpg", "/html.jpg")]
    rows += [("n02084071", server.url(f"/r/2/photos/{n}")) for n in names[40:60]]
    return rows


def crawl_command(
    settings: Settings, urls: Path, processes: int = 1
) -> tuple[list[str], dict[str, str]]:
    """``synset crawl`` as a subprocess, so it can be killed with SIGKILL."""
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": settings.database_url,
        "SYNSET_DATA_DIR": str(settings.data_dir),
        "SYNSET_ALLOW_PRIVATE_NETWORKS": "1",
    }
    args = [SYNSET, "crawl", "--source", f"urls:{urls}", "--per-synset", "30"]
    args += ["--concurrency", "4", "--per-host", "4", "--processes", str(processes)]
    return [*args, "--retries", "0", "--quiet"], env


def count_candidates(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Candidate)) or 0


def kill_when(
    args: list[str], env: dict[str, str], settings: Settings, target: int, *, group: bool = False
) -> int:
    """Start the crawl, SIGKILL it once ``target`` candidates exist; the count at the kill.

    ``group``: the crawl runs in its own process group and the whole group is killed,
    as a terminal or a container stop does: the driver and its local Dask workers.
    """
    # One engine for the polling: a new one per poll (connect, dispose) cost a PostgreSQL
    # backend some 30 times a second, CPU the crawl being watched needs on 2 cores.
    engine = make_engine(settings.database_url)
    try:
        proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=group,
        )
        deadline = time.monotonic() + 60
        while count_candidates(engine) < target and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "finished too early"
            time.sleep(0.02)
        assert proc.poll() is None, "the crawl finished before it could be interrupted"
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return count_candidates(engine)
    finally:
        engine.dispose()


# --- cluster crawls: one synset searched with several queries ------------------------

MULTI_QUERY = ("n02084071", "dog", ("n02", "n01", "terrier"))


def seed_cluster_targets(settings: Settings) -> None:
    """tench and cock (URL lists) and dog, searched on Openverse with three queries."""
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        for wnid, name in RESUME_TARGETS[:2]:
            add_target(session, wnid, name)
        add_target(session, *MULTI_QUERY)
    engine.dispose()


def cluster_url_rows(server: PhotoServer) -> list[tuple[str, str]]:
    """Per-synset 30 binds everywhere. dog: a slow URL, 10 photos under other URLs than
    Openverse gives them, two more URLs of the slow one's file, a 404 and an HTML page
    come first in its stream, so later Openverse hits of the same files are duplicates
    that must not count, even though they finish downloading first; its 30 end inside
    page 1 of its second query."""
    names = server.names
    n02 = [n for n in names if n.lower().startswith("n02")]
    rows = [("n01440764", server.url(f"/missing/{i}.jpg")) for i in range(3)]
    rows += [("n01440764", server.url(f"/photos/{n}")) for n in names[:40]]
    rows += [("n01514668", server.url(f"/r/1/photos/{n}")) for n in names[30:60]]
    rows += [("n01514668", server.url(p)) for p in ("/same/a.jpg", "/same/b.jpg", "/html.jpg")]
    rows += [("n02084071", server.url("/slow.jpg"))]  # the file of names[0], late
    rows += [("n02084071", server.url(f"/r/1/photos/{n}")) for n in n02[5:15]]
    rows += [
        ("n02084071", server.url(p))
        for p in ("/same/a.jpg", "/same/b.jpg", "/missing/dog.jpg", "/html.jpg")
    ]
    return rows


def cluster_crawl_command(
    settings: Settings, urls: Path, server: PhotoServer, *extra: str
) -> tuple[list[str], dict[str, str]]:
    """``synset crawl`` of the URL list, then Openverse (the photo server's), per-synset 30."""
    args, env = crawl_command(settings, urls)
    env["SYNSET_OPENVERSE_URL"] = server.url("/openverse")
    return [*args, "--source", "openverse", *extra], env
