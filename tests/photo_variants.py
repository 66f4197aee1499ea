"""Transformed copies of real photos: the near duplicates a crawl really finds.

Used by the clean tests and by ``bench/dedup.py``: the same picture resized,
re-encoded badly, cropped at the border, brightened, turned grey or mirrored, plus
the pictures the quality filter must reject (tiny, blurred, blank, animated, ...).
Every function returns encoded bytes so callers can store them like downloads.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter, ImageOps


def encode(im: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG" and im.mode not in ("RGB", "L", "CMYK"):
        im = im.convert("RGB")
    im.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}) | params)
    return buf.getvalue()


def _crop(fraction: float) -> Callable[[Image.Image], Image.Image]:
    def crop(im: Image.Image) -> Image.Image:
        w, h = im.size
        dx, dy = round(w * fraction), round(h * fraction)
        return im.crop((dx, dy, w - dx, h - dy))

    return crop


# name -> picture transform; the re-encode is done by `variant`.
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resize50": lambda im: im.resize((max(1, im.width // 2), max(1, im.height // 2))),
    "jpeg_q30": lambda im: im,
    "crop5": _crop(0.05),
    "crop10": _crop(0.10),
    "brighten": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "grey": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "mirror": ImageOps.mirror,
}


def variant(photo: Path, name: str) -> bytes:
    """The photo transformed by ``TRANSFORMS[name]`` and re-encoded as JPEG."""
    with Image.open(photo) as im:
        out = TRANSFORMS[name](im.convert("RGB"))
    return encode(out, quality=30 if name == "jpeg_q30" else 90)


def tiny(photo: Path, side: int = 60) -> bytes:
    with Image.open(photo) as im:
        im = im.convert("RGB")
        im.thumbnail((side, side))
        return encode(im)


def panorama(photo: Path) -> bytes:
    """A strip five times wider than high cut from the photo."""
    with Image.open(photo) as im:
        im = im.convert("RGB")
        h = max(100, im.width // 5)
        return encode(im.resize((im.width, im.width)).crop((0, 0, im.width, h)))


def blurred(photo: Path, radius: float = 8.0) -> bytes:
    with Image.open(photo) as im:
        return encode(im.convert("RGB").filter(ImageFilter.GaussianBlur(radius)))


def blank(colour: tuple[int, int, int] = (250, 250, 250), size: tuple[int, int] = (400, 300)):
    return encode(Image.new("RGB", size, colour))


def animated(photos: list[Path]) -> bytes:
    frames = []
    for p in photos[:3]:
        with Image.open(p) as im:
            frames.append(im.convert("RGB").resize((300, 225)))
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def as_cmyk(photo: Path) -> bytes:
    with Image.open(photo) as im:
        return encode(im.convert("CMYK"))


def as_palette_png(photo: Path) -> bytes:
    with Image.open(photo) as im:
        return encode(im.convert("RGB").quantize(64), "PNG")


def greyscale_photo(photo: Path) -> bytes:
    with Image.open(photo) as im:
        return encode(im.convert("L"))


def truncated(photo: Path) -> bytes:
    """The first 300 bytes of a JPEG: what an interrupted download leaves."""
    return photo.read_bytes()[:300]
