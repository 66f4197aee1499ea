"""Decode each image once, small, and take everything the clean stage needs from it.

Decoding dominates the cost of cleaning, so every image is opened once, decoded at
reduced size (Pillow's ``draft`` makes libjpeg skip most of the work for JPEGs),
and that small copy gives the perceptual hashes (the full picture, central 90% and
80% crops, the mirror image) and the quality measurements (sharpness, pixel
spread, greyscale). Images are spread over worker processes, because hashing is
CPU-bound Python and C calls. A file that cannot be read is a result with an
error, never an exception: one corrupt download must not stop a run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import scipy.fft
from PIL import Image, ImageOps, UnidentifiedImageError

from synset_builder.distributed import BatchRunner

# Long side of the copy everything is measured and hashed on. pHash looks at 32x32
# anyway, and decoding at 1/4 or 1/8 scale is what makes hashing fast; blur is
# still plain at this size (thresholds in quality.py are set for it).
WORKING_SIDE = 128
# Channel difference (0-255) under which an RGB picture is treated as grey.
_GREY_TOLERANCE = 6.0
# Channel difference (0-255) within which a pixel belongs to a flat background.
_FLAT_TOLERANCE = 4
CROPS = (0.90, 0.80)
_MIRROR_SIGNS = np.where(np.arange(8) % 2, -1.0, 1.0)[None, None, :]

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


def _laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low when edges are soft (blur)."""
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var())


def _spread(grey: Image.Image) -> float:
    """Distance between the 1st and 99th percentile grey levels (0 for a blank page)."""
    cum = np.cumsum(grey.histogram())
    if not cum[-1]:
        return 0.0
    low, high = np.searchsorted(cum, [0.01 * cum[-1], 0.99 * cum[-1]])
    return float(high - low)


def _background_share(rgb: Image.Image) -> float:
    """Share of pixels within ``_FLAT_TOLERANCE`` of the commonest colour, on every channel.

    A host's "image not found" picture is a flat background with a little text or
    a logo: nearly all of it is one colour, give or take compression noise. Real
    scenes, even sky, snow or a white product backdrop, shade and vary by more
    than that over most of the frame. The commonest colour is found on a coarse
    (16-level) grid, then refined to the median of its pixels.
    """
    arr = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    if not len(arr):
        return 0.0
    coarse = (arr >> 4).astype(np.int16)
    keys = (coarse[:, 0] << 8) | (coarse[:, 1] << 4) | coarse[:, 2]
    # bincount's argmax is the smallest commonest key, as np.unique's was, in O(n).
    top = np.bincount(keys, minlength=1 << 12).argmax()
    ref = np.median(arr[keys == top].astype(np.int16), axis=0)
    # |x - ref| <= t for an integer x is ceil(ref - t) <= x <= floor(ref + t): three
    # range tests on the channel planes, far cheaper than numpy's max over a 3-wide axis.
    low = np.clip(np.ceil(ref - _FLAT_TOLERANCE), 0, 255).astype(np.uint8)
    high = np.clip(np.floor(ref + _FLAT_TOLERANCE), 0, 255).astype(np.uint8)
    flat = np.ones(len(arr), dtype=bool)
    for c in range(3):
        channel = arr[:, c]
        flat &= (channel >= low[c]) & (channel <= high[c])
    return float(flat.mean())


def _is_grey(rgb: Image.Image) -> bool:
    """At most 1% of a 64 px thumbnail has channels further apart than the tolerance."""
    arr = np.asarray(rgb.resize((64, 64), Image.Resampling.NEAREST), dtype=np.int16)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    diff = np.maximum(np.maximum(abs(r - g), abs(g - b)), abs(r - b))
    return int(np.count_nonzero(diff > _GREY_TOLERANCE)) <= diff.size // 100


def _phashes(grey: Image.Image) -> tuple[int, int, int, int]:
    """pHash of the picture, its central crops and its mirror, bit for bit imagehash's.

    Written out (imagehash's own steps: 32x32 Lanczos, 2-D DCT-II, 8x8 low
    frequencies above their median) so the three DCTs run as one numpy call and the
    mirror costs nothing: mirroring a row negates its odd DCT coefficients. This
    makes hashing cheaper (docs/benchmarks.md); a test checks it still equals
    ``imagehash.phash``.
    """
    views = [grey, *(_central(grey, f) for f in CROPS)]
    pixels = np.stack(
        [np.asarray(v.resize((32, 32), Image.Resampling.LANCZOS), np.float64) for v in views]
    )
    low = scipy.fft.dct(scipy.fft.dct(pixels, axis=1), axis=2)[:, :8, :8]
    low = np.concatenate([low, low[:1] * _MIRROR_SIGNS])
    flat = low.reshape(len(low), 64)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    packed = np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64).view(np.int64)
    full, crop90, crop80, mirror = (int(v) for v in packed)
    return full, crop90, crop80, mirror


def fingerprint(path: str | Path, algo: str = "phash") -> Fingerprint:
    """Open, decode small, measure and hash one file."""
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
    grey_img = small.convert("L")
    grey = np.asarray(grey_img, dtype=np.float32)
    spread = _spread(grey_img)
    if algo == "phash":
        hashes = _phashes(grey_img)
    else:
        hashes = (
            to_int64(hasher(grey_img)),
            *(to_int64(hasher(_central(grey_img, f))) for f in CROPS),
            to_int64(hasher(ImageOps.mirror(grey_img))),
        )
    return Fingerprint(
        width=width,
        height=height,
        frames=frames,
        greyscale=_is_grey(small),
        sharpness=_laplacian_variance(grey),
        spread=spread,
        background=_background_share(small),
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
    if workers == 1 or len(batches) <= 1:
        for batch in batches:
            yield from _fingerprint_many(batch)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(batches))) as pool:
        for result in pool.map(_fingerprint_many, batches):
            yield from result
