"""The quality filter: which downloads are not worth an annotator's second.

Each rule is one reason with its threshold in :class:`CleanConfig`; a picture gets
the first reason that applies, stored on the image (``quality``,
``quality_reason``) so it can be explained, counted (``synset clean --dry-run``)
and overridden by a curator (``--keep``). Greyscale is flagged, not rejected:
X-rays, old photographs and some categories are legitimately grey.

Thresholds were set on the real photos of the test data against blurred copies
of them and blank pages (sharpness is the variance of the Laplacian over the mean
squared gradient, on the small grey copy, so it does not depend on contrast; the
measured distributions are in docs/benchmarks.md, clean section). Blur is the
weakest rule: mild blur and shallow depth of field pass on purpose.

Placeholders ("image not found" text, a host's logo on white) are caught three
ways: on their own, as a picture whose flat background covers ``placeholder_background``
of it (every real photo of the test data stays well below the default, white
product shots included, and a test holds it there; a line of text or a small
logo leaves nearly all of a page flat); as near duplicates of
files a curator names (``--placeholder FILE``); and as one picture a host
returned for several synsets. The first is a verdict on the image, kept like the
others; the other two depend on the collection and the options, so every run
recomputes them and lifts them where they no longer apply.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, ImageOps

from synset_builder.clean.fingerprint import Fingerprint
from synset_builder.config.clean import CleanConfig

REASONS = (
    "unreadable",
    "animated",
    "too_small",
    "aspect_ratio",
    "uniform",
    "blurred",
    "placeholder",
)


def verdict(fp: Fingerprint, cfg: CleanConfig) -> str | None:
    """The rejection reason of one picture on its own, or None when it is fine."""
    if fp.error is not None:
        return fp.error
    if fp.frames > 1:
        return f"animated: {fp.frames} frames"
    short, long = sorted((fp.width, fp.height))
    if short < cfg.min_side:
        return f"too_small: shorter side {short} px < {cfg.min_side}"
    if long / short > cfg.max_aspect:
        return f"aspect_ratio: {long / short:.1f} > {cfg.max_aspect:g}"
    if fp.spread < cfg.min_spread:
        return f"uniform: pixel spread {fp.spread:.0f} < {cfg.min_spread:g}"
    if fp.background >= cfg.placeholder_background:
        return f"{FLAT_PLACEHOLDER} covers {fp.background:.0%} of the picture"
    if fp.sharpness < cfg.min_sharpness:
        return f"blurred: sharpness {fp.sharpness:.2f} < {cfg.min_sharpness:g}"
    return None


FLAT_PLACEHOLDER = "placeholder: flat background"


def recomputed_placeholder(reason: str | None) -> bool:
    """A placeholder flag that each run recomputes (host or known file), not a verdict."""
    return (
        reason is not None
        and reason.startswith("placeholder")
        and not reason.startswith(FLAT_PLACEHOLDER)
    )


def _grey32(path: Path, mirror: bool = False) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            im.draft("L", (64, 64))
            grey = im.convert("L")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    if mirror:
        grey = ImageOps.mirror(grey)
    arr = np.asarray(grey.resize((32, 32), Image.Resampling.BOX), dtype=np.float64).ravel()
    return arr - arr.mean()


def same_picture(a: Path, b: Path, min_correlation: float = 0.9) -> bool:
    """Whether two files show the same picture, re-encoded, resized or brightened.

    A 64-bit perceptual hash says little about a mostly flat page (a logo on white
    lands near some real photos), so a hash match with a known placeholder is
    confirmed here: the two 32 px grey copies (or one mirrored) must correlate.
    """
    x = _grey32(a)
    if x is None:
        return False
    for y in (_grey32(b), _grey32(b, mirror=True)):
        if y is None:
            return False
        norm = float(np.sqrt((x @ x) * (y @ y)))
        if norm == 0.0:
            if not x.any() and not y.any():
                return True  # two blank pages
            continue
        if float(x @ y) / norm >= min_correlation:
            return True
    return False


def reason_key(reason: str) -> str:
    """The reason's name without its figures (``too_small: ...`` -> ``too_small``)."""
    return reason.split(":", 1)[0]


def host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def placeholders(
    rows: Iterable[tuple[int, int, str | None]], group_of: dict[int, int], min_synsets: int
) -> dict[int, str]:
    """Images that one host returned for ``min_synsets`` or more different synsets.

    ``rows`` are (image id, synset id, url) of candidates; ``group_of`` maps an
    image to its near-duplicate group, so "image not available" pictures re-encoded
    per request still count as one. Returns image id -> reason.
    """
    synsets: dict[tuple[int, str], set[int]] = defaultdict(set)
    members: dict[tuple[int, str], set[int]] = defaultdict(set)
    for image_id, synset_id, url in rows:
        h = host(url)
        if h is None:
            continue
        key = (group_of.get(image_id, image_id), h)
        synsets[key].add(synset_id)
        members[key].add(image_id)
    flagged: dict[int, str] = {}
    for key, found in synsets.items():
        if len(found) >= min_synsets:
            for image_id in members[key]:
                flagged[image_id] = f"placeholder: {key[1]} returned it for {len(found)} synsets"
    return flagged
