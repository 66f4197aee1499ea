"""Decode each image once, small, and take everything the clean stage needs from it.

Decoding dominates the cost of cleaning, so every image is opened once, decoded at
reduced size (Pillow's ``draft`` makes libjpeg skip most of the work for JPEGs),
and that small copy gives the perceptual hashes (the full picture, central 90% and
80% crops, the mirror image) and the quality measurements (sharpness, pixel
spread, greyscale, flat background). The decode is most of the time, so what
follows it is a few small numpy calls (see :func:`_phashes`). Images are spread
over worker processes, because hashing is CPU-bound Python and C calls. A file
that cannot be read is a result with an error, never an exception: one corrupt
download must not stop a run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from synset_builder.distributed import BatchRunner

# Long side of the copy everything is measured and hashed on. pHash looks at 32x32
# anyway, and a JPEG decoded at 1/8 scale (most photos: 40-64 px a side) is what
# makes hashing fast; blur is still plain at this size (thresholds in quality.py
# are set for it).
WORKING_SIDE = 64
# What the stored hashes mean; stored beside them (``image_hash.version``). Version
# 1: a 1/4-scale decode, 8-bit pixels; 2: a 1/8-scale decode, float pixels (both
# with imagehash's Lanczos resize). Bump it whenever a change moves hashes, so
# ``synset clean`` rehashes what an older version wrote instead of comparing them.
HASH_VERSION = 2
# Channel difference (0-255) under which an RGB picture is treated as grey.
_GREY_TOLERANCE = 6.0
# Channel difference (0-255) within which a pixel belongs to a flat background.
_FLAT_TOLERANCE = 4
CROPS = (0.90, 0.80)
_MIRROR_SIGNS = np.where(np.arange(8) % 2, -1.0, 1.0)[None, None, :]
# The 8 lowest rows of the 32-point DCT-II (scipy's unnormalised convention).
_DCT8 = 2 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(32)[None, :] + 1) / 64)

Hasher = Callable[[Image.Image], imagehash.ImageHash]
HASHERS: dict[str, Hasher] = {"phash": imagehash.phash, "dhash": imagehash.dhash}


@dataclass(frozen=True)
class Fingerprint:
    """What one decode of one file tells us. ``error`` is set when it could not be read."""

    width: int = 0
    height: int = 0
    frames: int = 1
    greyscale: bool = False
    sharpness: float = 0.0
    spread: float = 0.0
    # Share of the picture within a few grey levels of its commonest colour (placeholders).
    background: float = 0.0
    # full, crop90, crop80, mirror: signed int64 like the database columns.
    hashes: tuple[int, int, int, int] = (0, 0, 0, 0)
    error: str | None = None


def to_int64(h: imagehash.ImageHash) -> int:
    """A 64-bit imagehash as the signed int64 the database stores."""
    value = int(str(h), 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def _rgb(im: Image.Image) -> Image.Image:
    """RGB for every mode we meet: palette (with transparency), CMYK, 16-bit, LA."""
    if im.mode == "RGB":
        return im
    if im.mode in ("P", "PA", "LA", "RGBA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / top)).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")


def _central(im: Image.Image, fraction: float) -> Image.Image:
    w, h = im.size
    dx, dy = round(w * (1 - fraction) / 2), round(h * (1 - fraction) / 2)
    return im.crop((dx, dy, w - dx, h - dy))


def _lanczos_weights(size: int, start: float, stop: float) -> np.ndarray:
    """32 x ``size``: Pillow's Lanczos resize of the pixels [start, stop) to 32, as a matrix.

    The coefficients of Pillow's resampling (``precompute_coeffs`` with its
    3-lobed Lanczos filter, stretched by the reduction), which imagehash's pHash
    uses; here applied to float pixels, without rounding to 8 bits in between.
    """
    scale = (stop - start) / 32
    stretch = max(scale, 1.0)
    support = 3.0 * stretch
    weights = np.zeros((32, size))
    for i in range(32):
        centre = start + (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), size)
        x = (np.arange(lo, hi) - centre + 0.5) / stretch
        w = np.where(np.abs(x) < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)
        weights[i, lo:hi] = w / w.sum() if w.sum() else 0.0
    return weights


@functools.lru_cache(maxsize=4096)
def _projections(size: int) -> np.ndarray:
    """3 x 8 x ``size``: resize to 32 then the low DCT rows, for the full picture and crops.

    Both steps are linear, so one matrix per view and axis does them at once; the
    decoded sizes of a collection repeat, so they are computed once per size.
    """
    views = [_lanczos_weights(size, 0, size)]
    for f in CROPS:
        d = round(size * (1 - f) / 2)
        views.append(_lanczos_weights(size, d, size - d))
    return np.stack([_DCT8 @ v for v in views])


def _phashes(grey: np.ndarray) -> tuple[int, int, int, int]:
    """pHash of the picture, its central crops and its mirror, from one grey array.

    imagehash's pHash (32x32 Lanczos thumbnail, 2-D DCT-II, 8x8 low frequencies
    above their median), with the resize done on float pixels: resize and DCT are
    both linear, so each view costs two small matrix products instead of a resize
    and two FFTs (imagehash's steps cost several times the whole of this;
    docs/benchmarks.md). Mirroring a row negates its odd DCT coefficients, so the
    mirror hash (that of the mirrored 32x32 thumbnail) costs nothing. A test checks
    the bits against Pillow's float resize and scipy's DCT.
    """
    from synset_builder.clean import quality_kernels  # numba: only when hashing

    rows, cols = _projections(grey.shape[0]), _projections(grey.shape[1])
    low = rows @ grey @ cols.transpose(0, 2, 1)
    low = np.concatenate([low, low[:1] * _MIRROR_SIGNS])
    full, crop90, crop80, mirror = quality_kernels.median_bits(low.reshape(4, 64)).tolist()
    return full, crop90, crop80, mirror


def fingerprint(path: str | Path, algo: str = "phash") -> Fingerprint:
    """Open, decode small, measure and hash one file."""
    from synset_builder.clean import quality_kernels  # numba: only when hashing

    hasher = HASHERS[algo]
    try:
        with Image.open(path) as im:
            width, height = im.size
            frames = int(getattr(im, "n_frames", 1))
            im.draft("RGB", (WORKING_SIDE // 2, WORKING_SIDE // 2))
            small = _rgb(im)
            small.load()
    except FileNotFoundError:
        # Not a verdict on the picture: the data folder may just be the wrong one.
        return Fingerprint(error=f"missing: {path}")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        return Fingerprint(error=f"unreadable: {type(exc).__name__}: {exc}"[:190])
    except Image.DecompressionBombError as exc:
        return Fingerprint(error=f"unreadable: {exc}"[:190])
    if max(small.size) > WORKING_SIDE:
        small = small.copy()
        small.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.uint8)
    levels = quality_kernels.grey_levels(rgb)  # convert("L"), in the compiled loop
    pixels = rgb.reshape(-1, 3)
    if algo == "phash":
        hashes = _phashes(levels.astype(np.float64))
    else:
        grey_img = Image.fromarray(levels, "L")
        hashes = (
            to_int64(hasher(grey_img)),
            *(to_int64(hasher(_central(grey_img, f))) for f in CROPS),
            to_int64(hasher(ImageOps.mirror(grey_img))),
        )
    off = quality_kernels.grey_pixels_off(pixels, _GREY_TOLERANCE)
    return Fingerprint(
        width=width,
        height=height,
        frames=frames,
        # At most 1% of the pixels have channels further apart than the tolerance.
        greyscale=off <= len(pixels) // 100,
        # Low when edges are soft (blur): quality_kernels.sharpness.
        sharpness=quality_kernels.sharpness(levels),
        # 1st to 99th percentile grey level: 0 for a blank page.
        spread=quality_kernels.spread(levels),
        # A flat background (placeholders): quality_kernels.background_share.
        background=quality_kernels.background_share(pixels, _FLAT_TOLERANCE),
        hashes=hashes,  # type: ignore[arg-type]
    )


def _fingerprint_many(batch: list[tuple[str, str]]) -> list[Fingerprint]:
    return [fingerprint(path, algo) for path, algo in batch]


def fingerprint_all(
    paths: Iterable[str | Path],
    algo: str = "phash",
    workers: int | None = None,
    chunk: int = 64,
    runner: BatchRunner | None = None,
) -> Iterator[Fingerprint]:
    """Fingerprints in input order, computed by ``workers`` processes (default: all cores).

    With a ``runner`` (a Dask cluster) the same batches run on its workers instead.
    """
    from synset_builder.clean import quality_kernels  # numba: only when hashing

    if algo not in HASHERS:
        raise ValueError(f"unknown hash {algo!r}; choose one of {', '.join(HASHERS)}")
    jobs = [(str(p), algo) for p in paths]
    if runner is not None:
        size = runner.batch_size
        for result in runner.map(
            _fingerprint_many, [jobs[i : i + size] for i in range(0, len(jobs), size)]
        ):
            yield from result
        return
    batches = [jobs[i : i + chunk] for i in range(0, len(jobs), chunk)]
    workers = workers or os.cpu_count() or 1
    quality_kernels.load()
    if workers == 1 or len(batches) <= 1:
        for batch in batches:
            yield from _fingerprint_many(batch)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(batches))) as pool:
        for result in pool.map(_fingerprint_many, batches):
            yield from result
