"""Issue 20.7: ``clean --dry-run`` keeps what it learnt about the files; no bare colons.

A dry run decides nothing, but its decoding and hashing are facts about the bytes;
the real run that follows takes them instead of reading every file again. Proof
without peeking inside: after the dry run the pictures are moved away, and the
real run still gives every verdict, having read no file.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from synset_builder.clean.batches import kept_file
from synset_builder.db.models import Candidate, Image
from synset_builder.db.session import make_engine, session_scope
from tests import photo_variants as pv
from tests.clean_db import candidate, synset


def _collection(settings, photos) -> str:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        dog = synset(s, "n02084071")
        candidate(s, settings.data_dir, photos[0].read_bytes(), dog)
        candidate(s, settings.data_dir, pv.variant(photos[0], "resize50"), dog)
        tiny = candidate(s, settings.data_dir, pv.tiny(photos[1]), dog)
        tiny_sha = s.get(Image, tiny.image_id).sha256
    engine.dispose()
    return tiny_sha


def test_the_real_run_reuses_the_dry_runs_hashes(cli, settings, photos) -> None:
    tiny_sha = _collection(settings, photos)
    dry = cli("clean", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert json.loads(dry.out)["hashed"] == 3
    kept = kept_file(settings.data_dir, "phash")
    assert kept.parent == settings.data_dir / "fingerprints"
    size = kept.stat().st_size
    # A second dry run reads the kept facts and keeps nothing twice.
    again = json.loads(cli("clean", "--dry-run", "--json").out)
    assert (again["hashed"], again["reused_from_dry_run"]) == (0, 3)
    assert kept.stat().st_size == size
    # A crash mid-write, or a stray edit, leaves lines that are skipped, not fatal.
    with kept.open("a") as fh:
        fh.write('{"sha256": "x", "width": "wide"}\nnot json\n{"sha256": "' + "a" * 64)

    (settings.data_dir / "images").rename(settings.data_dir / "moved-away")
    done = cli("clean", "--json")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert (report["hashed"], report["reused_from_dry_run"], report["missing_files"]) == (0, 3, 0)
    assert report["rejected_by_reason"] == {"too_small": 1}
    assert report["near_duplicates"] == 1
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        assert s.scalar(select(Image.quality).where(Image.sha256 == tiny_sha)) == "rejected"
        assert all(
            q == "ok" for q in s.scalars(select(Image.quality).where(Image.sha256 != tiny_sha))
        )
        assert sum(1 for d in s.scalars(select(Candidate.near_duplicate_of)) if d) == 1
    engine.dispose()


def test_without_a_dry_run_nothing_is_kept_and_files_are_read(cli, settings, photos) -> None:
    _collection(settings, photos)
    done = json.loads(cli("clean", "--json").out)
    assert (done["hashed"], done["reused_from_dry_run"]) == (3, 0)
    assert not (settings.data_dir / "fingerprints").exists()


def test_report_lines_never_end_in_a_bare_colon(cli, settings, photos) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        dog = synset(s, "n02084071")
        candidate(s, settings.data_dir, photos[0].read_bytes(), dog)
    engine.dispose()
    for args in (("clean", "--dry-run"), ("clean",)):
        result = cli(*args)
        assert result.code == 0, result.err
        assert not [line for line in result.out.splitlines() if line.rstrip().endswith(":")]
        assert "rejected by quality: none" in result.out
