"""Issue 20 (5, 6): ``dir:`` collections laid out by hand, and a progress bar that ends.

A folder of ants is called ``ants`` (or ``train/ants``), not ``n02219486``: plurals
and case are matched through WordNet's morphy, folders that match nothing are
named with the nearest targets, and a folder that matches no target at all is an
error, not "0 imported". The crawl's bar ends at 100% when the work ends.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from synset_builder.config import Settings
from synset_builder.crawl.fetch import FetchConfig
from synset_builder.crawl.plan import CrawlConfig
from synset_builder.crawl.run import crawl
from synset_builder.crawl.sources import make_source
from synset_builder.db.models import Candidate, Synset
from synset_builder.db.session import make_engine, session_scope
from synset_builder.distributed import cluster_runner
from tests.crawl_support import add_target

ANT, BEE = "n02219486", "n02206856"


def _collection(root: Path, photos: list[Path], layout: dict[str, int]) -> Path:
    """Folders (``train/ants``) holding the given number of distinct real photos."""
    used = 0
    for folder, n in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for p in photos[used : used + n]:
            (root / folder / p.name).write_bytes(p.read_bytes())
        used += n
    return root


def _targets(settings) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        add_target(session, ANT, "ant")
        session.scalar(select(Synset).where(Synset.wnid == ANT)).lemmas = ["ant", "emmet"]
        add_target(session, BEE, "bee")
    engine.dispose()


def _per_synset(settings) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Synset.wnid, Candidate.id).join(Candidate, Candidate.synset_id == Synset.id)
        ).all()
    engine.dispose()
    out: dict[str, int] = {}
    for wnid, _ in rows:
        out[wnid] = out.get(wnid, 0) + 1
    return out


def test_plural_folders_are_matched_and_a_stray_one_is_named(
    cli, settings, wordnet_env, tmp_path, photos
) -> None:
    _targets(settings)
    data = _collection(
        tmp_path / "data", photos, {"train/Ants": 3, "train/bees": 2, "train/wasps": 1}
    )
    # A hostile name cannot forge an output line or recolour the terminal.
    (data / "train" / "evil\n\x1b[31mred").mkdir()
    result = cli("crawl", "--source", f"dir:{data / 'train'}", "--quiet")
    assert result.code == 0, result.err
    assert _per_synset(settings) == {ANT: 3, BEE: 2}
    warning = result.err[result.err.index("warning") :]
    assert "2 folder(s)" in warning and "wasps/" in warning
    assert "evil\\x0a\\x1b[31mred/" in warning and "\x1b" not in result.err
    assert "nearest targets:" in warning and f"({ANT})" in warning and f"({BEE})" in warning
    # A second run imports nothing new and still succeeds.
    again = cli("crawl", "--source", f"dir:{data / 'train'}", "--quiet")
    assert again.code == 0, again.err
    assert _per_synset(settings) == {ANT: 3, BEE: 2}


def test_split_folders_are_matched_one_level_down(cli, settings, wordnet_env, tmp_path, photos):
    _targets(settings)
    data = _collection(
        tmp_path / "hymenoptera", photos, {"train/ants": 2, "val/ants": 1, "train/bees": 2}
    )
    result = cli("crawl", "--source", f"dir:{data}", "--quiet")
    assert result.code == 0, result.err
    assert _per_synset(settings) == {ANT: 3, BEE: 2}
    assert "warning" not in result.err


def test_a_folder_matching_no_target_is_an_error_naming_each_folder(
    cli, settings, wordnet_env, tmp_path, photos
) -> None:
    _targets(settings)
    data = _collection(tmp_path / "pets", photos, {"cats": 1, "Ant_colony": 1})
    result = cli("crawl", "--source", f"dir:{data}", "--quiet")
    assert result.code != 0
    assert "No folder of" in result.err and "nothing can be imported" in result.err
    assert "cats/" in result.err and "Ant_colony/" in result.err
    line = next(x for x in result.err.splitlines() if "Ant_colony/" in x)
    assert line.index(f"ant ({ANT})") < line.index(f"bee ({BEE})")  # nearest first
    assert "Traceback" not in result.err
    assert _per_synset(settings) == {}


def _crawl_with_bar(settings, nltk_data: Path, folder: Path, per_synset: int) -> None:
    cfg = settings.with_overrides(nltk_data=nltk_data)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        fetch = FetchConfig(user_agent="synset-builder-test/1 (+tests)")
        crawl_cfg = CrawlConfig(fetch=fetch, per_synset=per_synset, progress=True)
        crawl(session, cfg.data_dir, [make_source(f"dir:{folder}", cfg)], crawl_cfg)
    engine.dispose()


def _last_bar(err: str) -> str:
    frames = [f for f in re.split(r"[\r\n]", err) if f.startswith("crawl:")]
    assert frames, err
    return frames[-1]


def test_progress_ends_at_100_percent_when_the_folders_run_dry(
    settings, wordnet_env, tmp_path, photos, capsys
) -> None:
    _targets(settings)
    data = _collection(tmp_path / "c", photos, {"ants": 3, "bees": 2})
    _crawl_with_bar(settings, wordnet_env, data, per_synset=1000)
    bar = _last_bar(capsys.readouterr().err)
    assert "100%" in bar and " 5/5 " in bar, bar


def test_progress_ends_at_100_percent_with_quota_and_duplicates(
    settings, wordnet_env, tmp_path, photos, capsys
) -> None:
    _targets(settings)
    data = _collection(tmp_path / "c", photos, {"ants": 4, "bees": 1})
    # The same bytes twice in one folder: one candidate, the bar still ends.
    (data / "bees" / "copy.jpg").write_bytes((data / "bees" / photos[4].name).read_bytes())
    _crawl_with_bar(settings, wordnet_env, data, per_synset=2)
    bar = _last_bar(capsys.readouterr().err)
    assert "100%" in bar and " 3/3 " in bar, bar


@pytest.mark.slow
def test_cluster_progress_ends_at_100_percent(db_factory, wordnet_env, tmp_path, photos, capsys):
    settings = Settings(
        database_url=db_factory.migrated("postgresql"),
        data_dir=tmp_path / "data",
        nltk_data=wordnet_env,
    )
    _targets(settings)
    data = _collection(tmp_path / "c", photos, {"ants": 3, "bees": 2})
    engine = make_engine(settings.database_url)
    with cluster_runner("local:1") as runner, session_scope(engine) as session:
        assert runner is not None
        fetch = FetchConfig(user_agent="synset-builder-test/1 (+tests)")
        cfg = CrawlConfig(fetch=fetch, per_synset=1000, progress=True)
        source = make_source(f"dir:{data}", settings)
        crawl(session, settings.ensure_data_dir(), [source], cfg, runner)
    engine.dispose()
    bar = _last_bar(capsys.readouterr().err)
    assert "100%" in bar and " 5/5 " in bar, bar


def test_progress_ends_with_more_synsets_than_run_at_once(
    settings, wordnet_env, tmp_path, photos, capsys
) -> None:
    from synset_builder.crawl.run import ACTIVE_SYNSETS

    n = ACTIVE_SYNSETS + 3  # later synsets start as earlier ones finish
    wnids = [f"n{10000000 + i}" for i in range(n)]
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        for wnid in wnids:
            add_target(session, wnid, f"thing {wnid}")
    engine.dispose()
    data = _collection(tmp_path / "c", photos, {wnid: 1 for wnid in wnids})
    _crawl_with_bar(settings, wordnet_env, data, per_synset=5)
    bar = _last_bar(capsys.readouterr().err)
    assert "100%" in bar and f" {n}/{n} " in bar, bar
    assert _per_synset(settings) == dict.fromkeys(wnids, 1)
