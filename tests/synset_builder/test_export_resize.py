"""The resized export (OpenCV's path) against Pillow's on the real photos.

``render`` resizes JPEGs with OpenCV (a scaled libjpeg decode, a Gaussian
pre-filter, bicubic, OpenCV's encoder) because Pillow's bicubic resize was most
of an export's CPU. These tests hold it to Pillow's output for the same job: the
same size, close pixels on every photo, as faithful to a full-resolution
Lanczos reference, the same orientation handling, and no weaker check of a
truncated file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from synset_builder.export.render import Rendered, RenderSpec, render
from synset_builder.export.run import ExportConfig, run_export
from synset_builder.export.verify import verify_export
from tests.export_data import build_collection

SIDE = 256
QUALITY = 90


def pillow_render(data: bytes) -> bytes:
    """What the export did before, with Pillow alone: draft, bicubic, quality 90."""
    with PILImage.open(io.BytesIO(data)) as opened:
        w, h = opened.size
        scale = SIDE / min(w, h)
        if scale < 1:
            opened.draft("RGB", (round(w * scale), round(h * scale)))
        img = ImageOps.exif_transpose(opened).convert("RGB")
    if min(img.size) > SIDE:
        scale = SIDE / min(img.size)
        size = (round(img.width * scale), round(img.height * scale))
        img = img.resize(size, PILImage.Resampling.BICUBIC, reducing_gap=3.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=QUALITY)
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with PILImage.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB"  # grey photos come out as RGB, as before
        return np.asarray(im, dtype=np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma (Wang et al. 2004: Gaussian window of sigma 1.5)."""
    luma = np.array([0.299, 0.587, 0.114])
    x, y = a @ luma, b @ luma
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ratio = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ratio.mean())


def ours(path: Path) -> Rendered:
    done = render(("sha", str(path), RenderSpec(resize=SIDE, quality=QUALITY)))
    assert not done.error, done.error
    return done


def test_resized_photos_match_pillow_and_are_as_faithful(photos) -> None:
    to_pillow_psnr, to_pillow_ssim, faithful_ours, faithful_pillow = [], [], [], []
    for photo in photos:
        data = photo.read_bytes()
        done = ours(photo)
        mine, theirs = pixels(done.data), pixels(pillow_render(data))
        assert mine.shape == theirs.shape and (done.width, done.height) == mine.shape[1::-1]
        with PILImage.open(photo) as im:
            assert min(done.width, done.height) == min(SIDE, *im.size)  # never enlarged
        to_pillow_psnr.append(psnr(mine, theirs))
        to_pillow_ssim.append(ssim(mine, theirs))
        with PILImage.open(photo) as full:
            reference = full.convert("RGB").resize((done.width, done.height), PILImage.LANCZOS)
        reference = np.asarray(reference, dtype=np.float64)
        faithful_ours.append(psnr(mine, reference))
        faithful_pillow.append(psnr(theirs, reference))
    # Close to Pillow's output on every photo (an unfiltered OpenCV bicubic aliases fine
    # texture: its worst photo falls to SSIM 0.80), and on average as close as Pillow's
    # own bilinear is to its bicubic.
    assert np.mean(to_pillow_psnr) >= 40 and min(to_pillow_psnr) >= 26
    assert np.mean(to_pillow_ssim) >= 0.97 and min(to_pillow_ssim) >= 0.92
    # As faithful to a Lanczos resize of the full-resolution decode, within a dB.
    assert np.mean(faithful_ours) >= np.mean(faithful_pillow) - 1.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_applies_it(photos, tmp_path, orientation) -> None:
    with PILImage.open(photos[3]) as im:
        base = im.convert("RGB")
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    tagged = tmp_path / "tagged.jpg"
    base.save(tagged, "JPEG", quality=95, exif=exif)
    done = ours(tagged)
    mine, theirs = pixels(done.data), pixels(pillow_render(tagged.read_bytes()))
    assert mine.shape == theirs.shape
    # A wrong turn or flip of a real photo lands far below this (about 12-18 dB).
    assert psnr(mine, theirs) > 30


def test_thumbnail_is_the_centred_square_of_the_output(photos) -> None:
    """The datasheet's samples come from the worker's thumbnails: ImageOps.fit's crop."""
    for photo in photos[:10]:
        done = render(("sha", str(photo), RenderSpec(resize=SIDE)), thumb=64)
        mine = np.frombuffer(done.thumb, np.uint8).reshape(64, 64, 3).astype(np.float64)
        with PILImage.open(io.BytesIO(done.data)) as im:
            theirs = np.asarray(ImageOps.fit(im.convert("RGB"), (64, 64)), dtype=np.float64)
        assert psnr(mine, theirs) > 28


def test_truncated_jpeg_is_listed_not_exported(photos, tmp_path) -> None:
    data = photos[0].read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 2 // 3])
    done = render(("sha", str(cut), RenderSpec(resize=SIDE)))
    assert done.error and not done.data


def test_cmyk_jpeg_is_resized_to_rgb(photos, tmp_path) -> None:
    with PILImage.open(photos[5]) as im:
        rgb = im.convert("RGB")
    cmyk = tmp_path / "cmyk.jpg"
    rgb.convert("CMYK").save(cmyk, "JPEG", quality=95)
    done = ours(cmyk)
    mine = pixels(done.data)
    assert min(done.width, done.height) == SIDE
    assert psnr(mine, pixels(pillow_render(cmyk.read_bytes()))) > 30


def test_files_resized_by_the_old_renderer_are_not_reused(session, tmp_path, photos) -> None:
    """A re-export into a folder resized by Pillow's path renders again: one export's
    files all come from one renderer."""
    col = build_collection(session, tmp_path / "data", photos[:40], per_class=5)
    out = tmp_path / "out"
    config = ExportConfig(out=out, render=RenderSpec(resize=64), workers=1)
    first = run_export(session, col.data_dir, config, database="test")
    assert first.rendered > 0 and first.reused == 0
    again = run_export(session, col.data_dir, config, database="test")
    assert again.reused == first.rendered and again.rendered == 0
    cache = out / ".render-cache.csv"
    with cache.open(newline="") as fh:
        rows = list(csv.reader(fh))
    # What the cache held before the renderer's version was part of its key.
    old_key = json.dumps(config.render.as_json(), sort_keys=True)
    with cache.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(
            [rows[0]] + [[r[0], old_key, *r[2:]] for r in rows[1:]]
        )
    third = run_export(session, col.data_dir, config, database="test")
    assert third.rendered == first.rendered and third.reused == 0
    assert verify_export(out, session).ok
