"""The per-pixel work on one small decoded picture, as compiled loops (numba).

Once the picture is decoded at 1/8 scale it has a few thousand pixels, and each
step written in numpy or Pillow (the grey copy, sharpness, pixel spread, greyscale
test, flat-background share, the pHash's median and bits) is a chain of small
calls whose fixed cost per call outweighs the arithmetic: together they cost
several times the hash's matrix products. Here they are a few passes over the
pixels. The definitions are those of :mod:`synset_builder.clean.fingerprint` (and
its tests: the grey copy is Pillow's, the bits are ``np.packbits``'), nothing more.

Compiled on first use and cached on disk (``cache=True``); the clean stage imports
this module before it starts its worker processes, so they inherit the loaded code.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Mean squared gradient (grey levels per pixel, squared) below which a picture counts
# as having no edges; real photos' copies lie far above (docs/benchmarks.md).
_GRADIENT_FLOOR = 50.0


@njit(cache=True, nogil=True)
def _laplacian(grey: np.ndarray, y: int, x: int) -> float:
    return 4.0 * grey[y, x] - grey[y - 1, x] - grey[y + 1, x] - grey[y, x - 1] - grey[y, x + 1]


@njit(cache=True, nogil=True)
def sharpness(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian over the mean squared gradient (interior).

    Blur lowers second differences faster than first ones, and the ratio does not
    depend on the picture's contrast: on a copy this small the Laplacian's variance
    alone spread real photos over a range that overlapped strongly blurred ones.
    The gradient counts as at least ``_GRADIENT_FLOOR``: a picture with almost no
    gradient anywhere (a smooth sky gradient, a blank page) has no edges at all and
    must not pass as sharp on its compression noise.
    """
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    n = (h - 2) * (w - 2)
    total = 0.0
    gradient = 0.0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            total += _laplacian(grey, y, x)
            gx = (float(grey[y, x + 1]) - float(grey[y, x - 1])) / 2
            gy = (float(grey[y + 1, x]) - float(grey[y - 1, x])) / 2
            gradient += gx * gx + gy * gy
    mean = total / n
    squares = 0.0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            d = _laplacian(grey, y, x) - mean
            squares += d * d
    return squares / max(gradient / n, _GRADIENT_FLOOR) / n


@njit(cache=True, nogil=True)
def spread(grey: np.ndarray) -> float:
    """Distance between the 1st and 99th percentile grey levels (as ``np.searchsorted``)."""
    counts = np.zeros(256, np.int64)
    for v in grey.ravel():
        counts[int(v)] += 1
    total = grey.size
    if total == 0:
        return 0.0
    low_at, high_at = 0.01 * total, 0.99 * total
    low = high = -1
    cum = 0
    for level in range(256):
        cum += counts[level]
        if low < 0 and cum >= low_at:
            low = level
        if high < 0 and cum >= high_at:
            high = level
            break
    return float(high - low)


@njit(cache=True, nogil=True)
def grey_pixels_off(pixels: np.ndarray, tolerance: float) -> int:
    """Pixels whose channels are further apart than ``tolerance`` (rows of R, G, B)."""
    off = 0
    for i in range(len(pixels)):
        r, g, b = int(pixels[i, 0]), int(pixels[i, 1]), int(pixels[i, 2])
        if max(abs(r - g), abs(g - b), abs(r - b)) > tolerance:
            off += 1
    return off


@njit(cache=True, nogil=True)
def _middle(counts: np.ndarray, n: int) -> float:
    """The median of ``n`` values given as counts per level (mean of the two middles)."""
    lo_rank, hi_rank = (n - 1) // 2, n // 2
    lo = hi = -1
    cum = 0
    for level in range(len(counts)):
        cum += counts[level]
        if lo < 0 and cum > lo_rank:
            lo = level
        if cum > hi_rank:
            hi = level
            break
    return (lo + hi) / 2


@njit(cache=True, nogil=True)
def background_share(pixels: np.ndarray, tolerance: int) -> float:
    """Share of pixels within ``tolerance`` of the commonest colour on every channel.

    The commonest colour is the smallest commonest cell of a 16-level grid, refined
    to the per-channel median of its pixels (``fingerprint._background_share``).
    """
    n = len(pixels)
    if n == 0:
        return 0.0
    cells = np.zeros(4096, np.int64)
    keys = np.empty(n, np.int64)
    for i in range(n):
        k = (pixels[i, 0] >> 4) * 256 + (pixels[i, 1] >> 4) * 16 + (pixels[i, 2] >> 4)
        keys[i] = k
        cells[k] += 1
    top = np.argmax(cells)
    levels = np.zeros((3, 256), np.int64)
    for i in range(n):
        if keys[i] == top:
            for c in range(3):
                levels[c, pixels[i, c]] += 1
    low = np.empty(3, np.int64)
    high = np.empty(3, np.int64)
    for c in range(3):
        ref = _middle(levels[c], cells[top])
        low[c] = max(math.ceil(ref - tolerance), 0)
        high[c] = min(math.floor(ref + tolerance), 255)
    flat = 0
    for i in range(n):
        inside = True
        for c in range(3):
            if pixels[i, c] < low[c] or pixels[i, c] > high[c]:
                inside = False
                break
        flat += inside
    return flat / n


@njit(cache=True, nogil=True)
def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """Pillow's ``convert("L")`` of an RGB array, bit for bit (ITU-R 601-2, rounded)."""
    h, w = rgb.shape[0], rgb.shape[1]
    out = np.empty((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            r, g, b = int(rgb[y, x, 0]), int(rgb[y, x, 1]), int(rgb[y, x, 2])
            out[y, x] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    return out


@njit(cache=True, nogil=True)
def median_bits(low: np.ndarray) -> np.ndarray:
    """Each row of 64 coefficients as 64 bits, set where above the row's median.

    The first coefficient is the most significant bit, as ``np.packbits`` orders
    them and imagehash prints them; returned as the signed int64 the database holds.
    """
    out = np.empty(len(low), np.int64)
    for i in range(len(low)):
        row = low[i]
        ordered = np.sort(row)
        median = (ordered[31] + ordered[32]) / 2
        value = np.uint64(0)
        for k in range(64):
            value = (value << np.uint64(1)) | np.uint64(row[k] > median)
        out[i] = np.int64(value)
    return out


def load() -> None:
    """Compile or load every loop now, in this process, so forked workers inherit them.

    Otherwise each worker process would load them from the disk cache on its first
    picture, a cost paid again by every pool.
    """
    grey = np.zeros((3, 3), np.uint8)
    pixels = np.zeros((1, 3), np.uint8)
    grey_levels(np.zeros((3, 3, 3), np.uint8))
    median_bits(np.zeros((4, 64)))
    sharpness(grey)
    spread(grey)
    grey_pixels_off(pixels, 6.0)
    background_share(pixels, 4)
