"""Near duplicates of real photos: within a synset, across synsets, against a reference set."""

from __future__ import annotations

import csv

import numpy as np
from sqlalchemy import func, select

from synset_builder.clean.run import run_clean
from synset_builder.config.clean import CleanConfig
from synset_builder.db.models import Candidate, Image, ImageHash
from tests import photo_variants as pv
from tests.clean_db import candidate, pool_ids, synset

CFG = CleanConfig(workers=1)


def test_every_transform_is_a_near_duplicate_of_its_photo(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    chosen = [photos[20], photos[60], photos[100]]
    originals = {p: candidate(session, data, p.read_bytes(), dog) for p in chosen}
    copies = {
        (p, name): candidate(session, data, pv.variant(p, name), dog)
        for p in chosen
        for name in pv.TRANSFORMS
    }
    unrelated = [candidate(session, data, p.read_bytes(), dog) for p in photos[30:40]]

    report = run_clean(session, data, CFG)

    pool = pool_ids(session)
    for p, original in originals.items():
        family = [original] + [c for (q, _), c in copies.items() if q == p]
        groups = {session.get(Image, c.image_id).dup_group for c in family}
        assert len(groups) == 1 and None not in groups, p.name
        left = [c for c in family if c.id in pool]
        assert len(left) == 1, (p.name, [c.id for c in left])
        # The largest picture is the one kept; the others point at it.
        areas = {c.id: session.get(Image, c.image_id).width * session.get(Image, c.image_id).height
                 for c in family}  # fmt: skip
        assert areas[left[0].id] == max(areas.values())
        for c in family:
            if c is not left[0]:
                assert c.near_duplicate_of == left[0].id
    assert all(c.id in pool for c in unrelated)
    own_groups = {session.get(Image, c.image_id).dup_group for c in unrelated}
    assert len(own_groups) == len(unrelated)
    assert report.near_duplicates == 3 * len(pv.TRANSFORMS)
    assert report.groups == 3


def test_threshold_is_exact_and_changing_it_never_rehashes(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    original = candidate(session, data, photos[63].read_bytes(), dog)
    bright = candidate(session, data, pv.variant(photos[63], "brighten"), dog)
    run_clean(session, data, CleanConfig(workers=1, max_distance=0))
    rows = {r.image_id: r for r in session.scalars(select(ImageHash))}
    a, b = rows[original.image_id], rows[bright.image_id]

    def dist(x: int, y: int) -> int:
        return bin((x ^ y) & (2**64 - 1)).count("1")

    every = ("full", "crop90", "crop80", "mirror")
    d = min(
        *(dist(a.full, getattr(b, v)) for v in every),
        *(dist(b.full, getattr(a, v)) for v in every),
    )
    assert 0 < d <= 8, d  # brightening moves pHash a little, never far
    below = run_clean(session, data, CleanConfig(workers=1, max_distance=d - 1))
    assert below.hashed == 0 and below.near_duplicates == 0
    assert {original.id, bright.id} <= pool_ids(session)
    at = run_clean(session, data, CleanConfig(workers=1, max_distance=d))
    assert at.hashed == 0 and at.near_duplicates == 1
    assert len({original.id, bright.id} & pool_ids(session)) == 1


def test_same_picture_for_unrelated_synsets_is_a_conflict(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    whippet = synset(session, "n02091134", parent=dog)
    teapot = synset(session, "n04398044")
    in_dog = candidate(session, data, photos[70].read_bytes(), dog)
    in_whippet = candidate(session, data, photos[70].read_bytes(), whippet)
    related_only = candidate(session, data, photos[71].read_bytes(), dog)
    related_copy = candidate(session, data, pv.variant(photos[71], "mirror"), whippet)
    in_teapot = candidate(session, data, pv.variant(photos[70], "crop10"), teapot)

    report = run_clean(session, data, CFG)

    group = session.get(Image, in_dog.image_id).dup_group
    assert {in_dog.conflict_group, in_whippet.conflict_group, in_teapot.conflict_group} == {group}
    # A dog picture found for "whippet" too is expected: whippet is a kind of dog.
    assert related_only.conflict_group is None and related_copy.conflict_group is None
    assert report.conflicts == 3
    # Conflicts stay in the pool: voting decides which synset the picture shows.
    assert {in_dog.id, in_whippet.id, in_teapot.id} <= pool_ids(session)


def test_against_a_reference_folder_and_an_export(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    leaked = candidate(session, data, photos[80].read_bytes(), dog)
    leaked_mirror = candidate(session, data, pv.variant(photos[81], "mirror"), dog)
    fresh = [candidate(session, data, p.read_bytes(), dog) for p in photos[82:86]]
    train = tmp_path / "train" / "n02084071"
    train.mkdir(parents=True)
    (train / "a.jpg").write_bytes(pv.variant(photos[80], "crop10"))
    (train / "notes.txt").write_text("not a picture")
    export = tmp_path / "export"
    (export / "train" / "n02084071").mkdir(parents=True)
    (export / "train" / "n02084071" / "b.jpg").write_bytes(photos[81].read_bytes())
    with (export / "manifest.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "split", "wnid"])
        writer.writerow(["train/n02084071/b.jpg", "train", "n02084071"])

    first = run_clean(session, data, CFG, against=tmp_path / "train")
    assert first.reference_matches == 1
    assert session.get(Image, leaked.image_id).reference_match == str(train / "a.jpg")
    run_clean(session, data, CFG, against=export)
    assert session.get(Image, leaked_mirror.image_id).reference_match.endswith("b.jpg")
    assert pool_ids(session) == {c.id for c in fresh}
    # Flags stay when later runs do not name the reference set again.
    assert run_clean(session, data, CFG).changed == 0
    assert session.scalar(
        select(Candidate.id).join(Image).where(Image.reference_match.is_not(None)).limit(1)
    )


def _reference_phash(grey: np.ndarray, box: tuple[float, ...] | None = None) -> int:
    """pHash as imagehash computes it (Lanczos to 32x32), on float pixels."""
    from PIL import Image as PILImage

    small = PILImage.fromarray(grey.astype(np.float32), "F")
    pixels = np.asarray(small.resize((32, 32), PILImage.Resampling.LANCZOS, box=box), np.float64)
    return _bits(pixels)


def _bits(pixels: np.ndarray) -> int:
    import scipy.fft

    low = scipy.fft.dct(scipy.fft.dct(pixels, axis=0), axis=1)[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int(np.packbits(bits).view(">u8")[0].astype(np.uint64).view(np.int64))


def test_fast_phash_is_imagehash_phash_on_float_pixels(tmp_path, photos) -> None:
    """The matrix pHash gives the bits of Pillow's Lanczos resize (of float pixels) and
    scipy's DCT, for the picture, its central crops and the mirror of its thumbnail;
    dhash is imagehash's."""
    import imagehash
    from PIL import Image as PILImage

    from synset_builder.clean.fingerprint import fingerprint, to_int64

    for photo in photos[::20]:
        small = tmp_path / f"{photo.stem}.png"
        with PILImage.open(photo) as im:
            im.convert("RGB").resize((60, 45)).save(small)  # small: decoded as is
        grey_img = PILImage.open(small).convert("L")
        grey = np.asarray(grey_img, np.float64)
        crops = [(round(60 * d), round(45 * d), 60 - round(60 * d), 45 - round(45 * d))
                 for d in (0.05, 0.10)]  # fmt: skip
        full = np.asarray(PILImage.fromarray(grey.astype(np.float32), "F").resize(
            (32, 32), PILImage.Resampling.LANCZOS), np.float64)  # fmt: skip
        expected = (
            _reference_phash(grey),
            *(_reference_phash(grey, c) for c in crops),
            _bits(full[:, ::-1]),
        )
        got = fingerprint(small, "phash").hashes
        assert got == expected, photo.name
        assert fingerprint(small, "phash").hashes == got  # deterministic
        dhash = fingerprint(small, "dhash").hashes
        assert dhash[0] == to_int64(imagehash.dhash(grey_img))


def test_photo_hashes_stay_near_imagehash_phash(photos) -> None:
    """Float pixels move few bits from imagehash's pHash (8-bit pixels) of one decode."""
    import imagehash
    from PIL import Image as PILImage

    from synset_builder.clean.fingerprint import WORKING_SIDE, fingerprint, to_int64

    moved = []
    for photo in photos[::10]:
        with PILImage.open(photo) as im:
            im.draft("RGB", (WORKING_SIDE // 2, WORKING_SIDE // 2))
            grey = im.convert("L")
        if max(grey.size) > WORKING_SIDE:
            continue  # ours thumbnails first: not the same pixels
        full = fingerprint(photo).hashes[0]
        moved.append(bin((full ^ to_int64(imagehash.phash(grey))) & (2**64 - 1)).count("1"))
    assert len(moved) >= 5 and max(moved) <= 4 and np.median(moved) <= 2, moved


def test_dhash_is_stored_beside_phash(session, tmp_path, photos) -> None:
    data = tmp_path / "data"
    dog = synset(session, "n02084071")
    candidate(session, data, photos[90].read_bytes(), dog)
    copy = candidate(session, data, pv.variant(photos[90], "jpeg_q30"), dog)
    candidate(session, data, photos[91].read_bytes(), dog)
    run_clean(session, data, CFG)
    phashes = dict(session.execute(select(Image.id, Image.phash)).all())
    with_dhash = run_clean(session, data, CleanConfig(workers=1, hash="dhash"))
    assert with_dhash.hashed == 3  # every image once more, for the new algorithm only
    algos = session.execute(select(ImageHash.algo, func.count()).group_by(ImageHash.algo)).all()
    assert dict(algos) == {"phash": 3, "dhash": 3}
    assert dict(session.execute(select(Image.id, Image.phash)).all()) == phashes
    assert with_dhash.near_duplicates == 1 and copy.id not in pool_ids(session)
