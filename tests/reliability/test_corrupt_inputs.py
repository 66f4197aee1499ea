"""Fault: corrupt inputs to the stages that read files a person hands them.

* ``crawl --source urls:FILE`` with a bad row, bytes that are not UTF-8, a NUL byte:
  one sentence on stderr, a non-zero exit, and nothing written (no candidate, image,
  failure record or stored file).
* ``crawl --source dir:PATH`` with empty, garbage, truncated and unreadable files
  next to good photos: the good ones are imported, each bad one is stored as a
  failure with its reason, and the run exits 0 (failures are data).

Truncated exports for ``verify`` and ``train``: ``test_corrupt_exports.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from synset_builder.config import Settings
from synset_builder.db.models import Candidate, FetchFailure, Image
from synset_builder.db.session import make_engine, session_scope
from tests.crawl_support import add_target

BAD_URL_LISTS: dict[str, bytes] = {
    "row without a URL": b"wnid,url\nn01440764,http://127.0.0.1:9/a.jpg\nn01440764\n",
    "not UTF-8": b"wnid,url\nn01440764,http://127.0.0.1:9/\xff\xfe.jpg\n",
    "NUL byte": b"wnid,url\nn01440764,http://127.0.0.1:9/a\x00.jpg\n",
    "binary file": bytes(range(256)) * 8,
}


def _seed(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        add_target(session, "n01440764", "tench")
    engine.dispose()


def _counts(settings: Settings) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as s:
            return {
                m.__name__: s.scalar(select(func.count()).select_from(m)) or 0
                for m in (Candidate, Image, FetchFailure)
            }
    finally:
        engine.dispose()


def _one_sentence(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("case", sorted(BAD_URL_LISTS))
def test_bad_url_list_is_one_message_and_writes_nothing(
    case: str, cli: Callable, settings: Settings, tmp_path: Path
) -> None:
    _seed(settings)
    path = tmp_path / "urls.csv"
    path.write_bytes(BAD_URL_LISTS[case])
    done = cli("crawl", "--source", f"urls:{path}", "--retries", "0", "--quiet")
    assert done.code != 0
    assert "urls.csv" in _one_sentence(done.err)
    assert _counts(settings) == {"Candidate": 0, "Image": 0, "FetchFailure": 0}
    images = settings.data_dir / "images"
    assert not images.exists() or not any(p.is_file() for p in images.rglob("*"))


def test_bad_files_in_a_folder_become_failures_with_reasons(
    cli: Callable, settings: Settings, photos: list[Path], tmp_path: Path
) -> None:
    _seed(settings)
    folder = tmp_path / "collection" / "tench"
    folder.mkdir(parents=True)
    for photo in photos[:3]:
        shutil.copy(photo, folder / photo.name)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "garbage.jpg").write_bytes(os.urandom(4096))
    (folder / "truncated.jpg").write_bytes(photos[3].read_bytes()[:2000])
    (folder / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    bad = {"empty.jpg", "garbage.jpg", "truncated.jpg"}
    if os.geteuid() != 0:  # root reads anything; the permission case needs another user
        locked = folder / "locked.jpg"
        shutil.copy(photos[4], locked)
        locked.chmod(0)
        bad.add("locked.jpg")
    done = cli("crawl", "--source", f"dir:{folder.parent}", "--retries", "0", "--quiet")
    assert done.code == 0, done.err
    assert "Traceback" not in done.err
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        kept = {Path(p).name for p in s.scalars(select(Image.path))}
        failed = {
            Path(u).name: r for u, r in s.execute(select(FetchFailure.url, FetchFailure.reason))
        }
    engine.dispose()
    assert kept == {p.name for p in photos[:3]}
    assert set(failed) == bad, failed
    assert all(reason for reason in failed.values())
    leftovers = settings.data_dir / "tmp"
    assert not leftovers.exists() or not any(leftovers.iterdir())
