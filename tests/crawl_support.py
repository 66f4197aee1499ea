"""Helpers for crawl tests: target synsets with queries, URL lists, run a crawl."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.crawl import CrawlConfig, crawl
from synset_builder.crawl_records import Tally
from synset_builder.db.models import Candidate, FetchFailure, Image, Query, Synset
from synset_builder.db.session import make_engine, session_scope
from synset_builder.fetch import FetchConfig
from synset_builder.sources import make_source


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
    finally:
        engine.dispose()
    root = settings.data_dir
    files = sorted(str(p.relative_to(root)) for p in (root / "images").rglob("*") if p.is_file())
    leftovers = sorted(p.name for p in (root / "tmp").glob("*")) if (root / "tmp").exists() else []
    return {
        "candidates": cands,
        "images": images,
        "failures": fails,
        "files": files,
        "tmp": leftovers,
    }
