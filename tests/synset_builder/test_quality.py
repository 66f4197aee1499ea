"""The quality filter on real photos and what a crawl really brings back."""

from __future__ import annotations

import json

from sqlalchemy import select

from synset_builder.clean.run import run_clean
from synset_builder.config.clean import CleanConfig
from synset_builder.db.models import Candidate, Image
from synset_builder.db.session import make_engine, session_scope
from tests import photo_variants as pv
from tests.clean_db import broken_candidate, candidate, pool_ids, synset

CFG = CleanConfig(workers=1)


def test_each_reason_on_real_pictures(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    made = {
        "good": pv.variant(photos[0], "jpeg_q30"),
        "tiny": pv.tiny(photos[1]),
        "panorama": pv.panorama(photos[2]),
        "blurred": pv.blurred(photos[3]),
        "blank": pv.blank(),
        "black": pv.blank((0, 0, 0)),
        "animated": pv.animated(photos[4:7]),
        "cmyk": pv.as_cmyk(photos[7]),
        "palette": pv.as_palette_png(photos[8]),
        "grey": pv.greyscale_photo(photos[9]),
    }
    cands = {name: candidate(session, data, blob, dog) for name, blob in made.items()}
    cands["truncated"] = broken_candidate(session, data, pv.truncated(photos[10]), dog)

    report = run_clean(session, data, CFG)

    def image(name: str) -> Image:
        return session.get(Image, cands[name].image_id)

    expected = {
        "tiny": "too_small",
        "panorama": "aspect_ratio",
        "blurred": "blurred",
        "blank": "uniform",
        "black": "uniform",
        "animated": "animated",
        "truncated": "unreadable",
    }
    for name, reason in expected.items():
        assert image(name).quality == "rejected", name
        assert image(name).quality_reason.startswith(reason), (name, image(name).quality_reason)
    for name in ("good", "cmyk", "palette", "grey"):
        assert image(name).quality == "ok", (name, image(name).quality_reason)
    assert image("grey").greyscale is True
    assert image("good").greyscale is False and image("cmyk").greyscale is False
    assert report.reasons["uniform"] == 2 and report.reasons["too_small"] == 1
    assert pool_ids(session) == {cands[n].id for n in ("good", "cmyk", "palette", "grey")}


def test_min_side_is_configurable(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    cat = synset(session, "n02121808")
    small = candidate(session, data, pv.tiny(photos[11], side=150), cat)
    short = min(session.get(Image, small.image_id).width, session.get(Image, small.image_id).height)
    assert 100 <= short < 120  # passes the default of 100, fails the curator's 120
    run_clean(session, data, CleanConfig(workers=1, min_side=120))
    image = session.get(Image, small.image_id)
    assert image.quality == "rejected"
    assert image.quality_reason == f"too_small: shorter side {short} px < 120"


def test_placeholder_returned_by_one_host_for_many_synsets(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    synsets = [synset(session, f"n0000000{i}") for i in range(4)]
    # The host re-encodes its "image not available" picture: near-same bytes each time.
    same_host = [
        candidate(session, data, pv.variant(photos[12], v), s, url=f"https://cdn.example/{i}.jpg")
        for i, (v, s) in enumerate(zip(["jpeg_q30", "resize50", "brighten"], synsets, strict=False))
    ]
    # Another host found the same photo for two synsets only: a conflict, not a placeholder.
    other = [
        candidate(session, data, pv.variant(photos[13], v), s, url=f"https://b.example/{v}")
        for v, s in zip(["jpeg_q30", "resize50"], synsets[:2], strict=True)
    ]
    run_clean(session, data, CFG)
    for c in same_host:
        img = session.get(Image, c.image_id)
        assert img.quality == "rejected" and img.quality_reason.startswith("placeholder")
        assert "cdn.example" in img.quality_reason
    for c in other:
        assert session.get(Image, c.image_id).quality == "ok"
    assert pool_ids(session) == {c.id for c in other}


def test_rerun_changes_nothing_and_hashes_only_new(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    for p in photos[:4]:
        candidate(session, data, p.read_bytes(), dog)
    candidate(session, data, pv.variant(photos[0], "crop5"), dog)
    first = run_clean(session, data, CFG)
    assert first.hashed == 5 and first.near_duplicates == 1 and first.changed > 0
    before = session.execute(
        select(Image.id, Image.quality, Image.dup_group, Image.phash).order_by(Image.id)
    ).all()
    again = run_clean(session, data, CFG)
    assert again.hashed == 0 and again.changed == 0
    after = session.execute(
        select(Image.id, Image.quality, Image.dup_group, Image.phash).order_by(Image.id)
    ).all()
    assert before == after
    candidate(session, data, photos[5].read_bytes(), dog)
    third = run_clean(session, data, CleanConfig(workers=2))
    assert third.hashed == 1


def test_cli_dry_run_keep_and_status(cli, settings, photos) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        dog = synset(s, "n02084071")
        candidate(s, settings.data_dir, photos[0].read_bytes(), dog)
        candidate(s, settings.data_dir, pv.variant(photos[0], "resize50"), dog)
        tiny = candidate(s, settings.data_dir, pv.tiny(photos[1]), dog)
        tiny_sha = s.get(Image, tiny.image_id).sha256
    dry = cli("clean", "--dry-run")
    assert dry.code == 0, dry.err
    assert f"{tiny_sha}  too_small" in dry.out
    assert "too_small: 1" in dry.out and "1 candidate(s) would be near duplicates" in dry.out
    with session_scope(engine) as s:
        assert s.scalar(select(Image.quality).where(Image.sha256 == tiny_sha)) is None
        assert s.scalars(select(Candidate.near_duplicate_of)).all() == [None] * 3

    done = cli("clean", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["rejected_by_reason"] == {"too_small": 1}
    counts = json.loads(cli("status", "--json").out)[0]["counts"]
    assert (counts["candidates"], counts["clean"], counts["rejected"]) == (3, 1, 2)

    kept = cli("clean", "--keep", tiny_sha)
    assert kept.code == 0, kept.err
    counts = json.loads(cli("status", "--json").out)[0]["counts"]
    assert (counts["clean"], counts["rejected"]) == (2, 1)

    unknown = cli("clean", "--keep", "f" * 64)
    assert unknown.code != 0 and "No image has the sha256" in unknown.err
    bad = cli("clean", "--hash", "ahash")
    assert bad.code != 0 and "Unknown hash" in bad.err
    engine.dispose()


def test_missing_file_waits_for_the_next_run(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    here = candidate(session, data, photos[14].read_bytes(), dog)
    gone = candidate(session, data, photos[15].read_bytes(), dog)
    stored = data / session.get(Image, gone.image_id).path
    moved = tmp_path / "elsewhere.jpg"
    stored.rename(moved)
    first = run_clean(session, data, CFG)
    assert (first.hashed, first.missing) == (1, 1)
    assert session.get(Image, gone.image_id).quality is None
    assert session.get(Image, here.image_id).quality == "ok"
    moved.rename(stored)
    second = run_clean(session, data, CFG)
    assert (second.hashed, second.missing) == (1, 0)
    assert session.get(Image, gone.image_id).quality == "ok"


def test_wrong_data_folder_is_one_line(cli, settings, photos, tmp_path, monkeypatch) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        candidate(s, settings.data_dir, photos[16].read_bytes(), synset(s, "n02084071"))
    engine.dispose()
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SYNSET_DATA_DIR", str(empty))
    result = cli("clean")
    assert result.code != 0 and "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "SYNSET_DATA_DIR" in errors[0]
    # Nothing was decided about the picture: with the right folder it is cleaned.
    monkeypatch.setenv("SYNSET_DATA_DIR", str(settings.data_dir))
    assert cli("clean").code == 0
