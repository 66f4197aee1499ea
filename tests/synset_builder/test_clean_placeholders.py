"""Single placeholder pictures: a flat page with a little text or a logo, and known files.

The placeholders are drawn with Pillow (tests/placeholder_images.py); the pictures
that must stay are the real photographs of ../shared/testdata/photos, all of them,
plus the look-alikes a flat-background rule could wrongly catch: smooth snow and
sky gradients and a white product shot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from synset_builder.clean.fingerprint import fingerprint
from synset_builder.clean.quality import verdict
from synset_builder.clean.run import run_clean
from synset_builder.config import Settings
from synset_builder.config.clean import CleanConfig
from synset_builder.db.models import Image
from synset_builder.db.session import make_engine, session_scope
from tests import photo_variants as pv
from tests import placeholder_images as ph
from tests.clean_db import candidate, pool_ids, synset

CFG = CleanConfig(workers=1)


def placeholders_made() -> dict[str, bytes]:
    return {
        "sorry_gif": ph.not_found_text(),
        "sorry_grey_jpeg": ph.not_found_text(
            background=(235, 235, 235), ink=(120, 120, 120), fmt="JPEG"
        ),
        "not_found_png": ph.not_found_text(lines=("Image not found",), size=(300, 200), fmt="PNG"),
        "logo_png": ph.logo_on_white(),
        "logo_jpeg": ph.logo_on_white(size=(640, 480), fmt="JPEG"),
    }


def look_alikes(photos: list[Path]) -> dict[str, bytes]:
    return {
        "snow": ph.gradient((245, 247, 250), (225, 228, 232)),
        "sky": ph.gradient((90, 140, 210), (190, 215, 240)),
        "haze": ph.gradient((200, 205, 210), (215, 220, 225), noise=1.0),
        "product_shot": ph.product_shot(photos[50]),
        "photo": pv.variant(photos[60], "jpeg_q30"),
    }


def reason_of(session, cand) -> tuple[str, str | None]:  # type: ignore[no-untyped-def]
    image = session.get(Image, cand.image_id)
    return image.quality, image.quality_reason


def test_flat_page_placeholders_are_rejected_and_look_alikes_are_not(
    session, tmp_path: Path, photos: list[Path]
) -> None:
    data = tmp_path / "data"
    bee = synset(session, "n02206856")
    made = {name: candidate(session, data, blob, bee) for name, blob in placeholders_made().items()}
    kept = {name: candidate(session, data, blob, bee) for name, blob in look_alikes(photos).items()}

    report = run_clean(session, data, CFG)

    for name, cand in made.items():
        quality, reason = reason_of(session, cand)
        assert quality == "rejected" and reason.startswith("placeholder: flat background"), (
            name,
            reason,
        )
    for name, cand in kept.items():
        quality, reason = reason_of(session, cand)
        assert not (reason or "").startswith("placeholder"), (name, reason)
    # The product shot and the photo are fine pictures; the smooth gradients have no
    # edges at all, which the blur rule (not this one) turns away.
    for name in ("product_shot", "photo"):
        assert reason_of(session, kept[name]) == ("ok", None), name
    assert report.reasons["placeholder"] == len(made)
    assert pool_ids(session) == {kept["product_shot"].id, kept["photo"].id}

    # A verdict on the picture itself: a rerun keeps it and writes nothing.
    again = run_clean(session, data, CFG)
    assert again.changed == 0 and again.reasons["placeholder"] == len(made)
    assert all(reason_of(session, c)[0] == "rejected" for c in made.values())


def test_no_real_photo_is_taken_for_a_placeholder(photos: list[Path], tmp_path: Path) -> None:
    """Every real photograph of the test data, white product shots among them, passes."""
    caught = {}
    for photo in photos:
        reason = verdict(fingerprint(photo), CFG)
        if reason is not None and reason.startswith("placeholder"):
            caught[photo.name] = reason
    assert caught == {}
    for name, blob in placeholders_made().items():
        path = tmp_path / name
        path.write_bytes(blob)
        assert (verdict(fingerprint(path), CFG) or "").startswith("placeholder"), name


def test_the_flat_share_is_a_setting(session, tmp_path: Path) -> None:
    data = tmp_path / "data"
    bee = synset(session, "n02206856")
    logo = candidate(session, data, ph.logo_on_white(), bee)
    run_clean(session, data, CleanConfig(workers=1, placeholder_background=1.0))
    assert reason_of(session, logo) == ("ok", None)
    with pytest.raises(ValueError, match="placeholder_background"):
        CleanConfig(placeholder_background=0.4)


def _seed(settings: Settings, blobs: dict[str, bytes]) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        bee = synset(session, "n02206856")
        ids = {name: candidate(session, settings.data_dir, b, bee).image_id
               for name, b in blobs.items()}  # fmt: skip
    engine.dispose()
    return ids


def _reasons(settings: Settings) -> dict[int, str | None]:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        rows = dict(session.execute(select(Image.id, Image.quality_reason)).all())
    engine.dispose()
    return rows


def test_known_placeholder_files_reject_their_near_duplicates(
    photos: list[Path], settings: Settings, cli: Callable, tmp_path: Path, monkeypatch
) -> None:
    """A host's placeholder that is itself a photo: only ``--placeholder FILE`` catches it."""
    known = tmp_path / "host-unavailable.jpg"
    known.write_bytes(pv.variant(photos[20], "jpeg_q30"))
    ids = _seed(
        settings,
        {
            "resent_small": pv.variant(photos[20], "resize50"),
            "resent_bright": pv.variant(photos[20], "brighten"),
            **{f"photo{i}": pv.variant(p, "jpeg_q30") for i, p in enumerate(photos[21:29])},
        },
    )
    copies = {ids["resent_small"], ids["resent_bright"]}

    done = cli("clean", "--placeholder", str(known))
    assert done.code == 0, done.err
    reasons = _reasons(settings)
    for image_id in copies:
        assert reasons[image_id] == "placeholder: like the known placeholder host-unavailable.jpg"
    assert all(reasons[i] is None for i in set(ids.values()) - copies)
    assert "placeholder: 2" in done.out

    # The list is an option: a run without it lifts these flags (nothing is lost).
    assert cli("clean").code == 0
    assert all(reason is None for reason in _reasons(settings).values())
    # ... and the setting names the same files for every run.
    monkeypatch.setenv("SYNSET_CLEAN_PLACEHOLDERS", f'["{known}"]')
    assert cli("clean").code == 0
    assert {i for i, r in _reasons(settings).items() if r} == copies


def test_every_real_photo_survives_a_known_placeholder(
    session, tmp_path: Path, photos: list[Path]
) -> None:
    """The whole real photo set against the drawn placeholders as known files: none caught."""
    data = tmp_path / "data"
    files = []
    for name, blob in placeholders_made().items():
        files.append(tmp_path / f"{name}.img")
        files[-1].write_bytes(blob)
    bee = synset(session, "n02206856")
    cands = [candidate(session, data, p.read_bytes(), bee) for p in photos]
    run_clean(session, data, CleanConfig(workers=1, placeholders=tuple(files)))
    caught = {
        c.image_id: reason_of(session, c)[1]
        for c in cands
        if (reason_of(session, c)[1] or "").startswith("placeholder")
    }
    assert caught == {}


def test_a_missing_placeholder_file_is_one_line(cli: Callable, tmp_path: Path) -> None:
    done = cli("clean", "--placeholder", str(tmp_path / "nope.gif"))
    assert done.code != 0 and "nope.gif" in done.err and "does not exist" in done.err
    assert len(done.err.strip().splitlines()) == 1


def _flat_share(rgb: np.ndarray, tolerance: int = 4) -> float:
    """The flat-background share by its definition, written plainly: the commonest
    colour on a 16-level grid, refined to its pixels' median; the share of pixels
    within ``tolerance`` of it on every channel."""
    arr = rgb.reshape(-1, 3).astype(np.int64)
    keys = [tuple(int(v) // 16 for v in px) for px in arr]
    counts: dict[tuple[int, ...], int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    top = min(k for k, n in counts.items() if n == max(counts.values()))
    ref = np.median(arr[[k == top for k in keys]], axis=0)
    return sum(bool(np.all(np.abs(px - ref) <= tolerance)) for px in arr) / len(arr)


def test_background_share_follows_its_definition(tmp_path: Path, photos: list[Path]) -> None:
    """Small lossless pictures, so the fingerprint measures exactly these pixels:
    real photos, and flat pages with noise straddling the tolerance, at 0 and 255 too."""
    rng = np.random.default_rng(7)
    pictures = []
    for photo in photos[::12]:
        with PILImage.open(photo) as im:
            small = im.convert("RGB")
        small.thumbnail((64, 64))  # the working side: measured as is
        pictures.append(np.asarray(small))
    for base in ((0, 0, 0), (255, 255, 255), (3, 128, 252), (200, 17, 90)):
        page = np.tile(np.asarray(base, dtype=np.int64), (40, 60, 1))
        noise = rng.integers(-6, 7, page.shape) * (rng.random(page.shape[:2]) < 0.5)[..., None]
        pictures.append(np.clip(page + noise, 0, 255).astype(np.uint8))
    for i, pixels in enumerate(pictures):
        path = tmp_path / f"{i}.png"
        PILImage.fromarray(pixels).save(path)
        assert fingerprint(path).background == pytest.approx(_flat_share(pixels), abs=1e-12), i
