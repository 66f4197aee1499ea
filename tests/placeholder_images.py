"""Pictures a host sends instead of the one asked for, and real look-alikes that are not.

Placeholders are drawn with Pillow the way hosts make them: a line or two of grey
text on a flat background, a small logo on white, saved as GIF, PNG or JPEG.
The look-alikes are what a mostly-flat-background rule could wrongly catch:
smooth snow and sky gradients (with a little sensor noise) and a product shot (a
real photograph pasted large on white).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _save(im: Image.Image, fmt: str, **opts: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **opts)
    return buf.getvalue()


def not_found_text(
    lines: tuple[str, ...] = ("We're sorry,", "this image could not be found."),
    size: tuple[int, int] = (500, 375),
    background: tuple[int, int, int] = (255, 255, 255),
    ink: tuple[int, int, int] = (150, 150, 150),
    fmt: str = "GIF",
) -> bytes:
    """Grey text centred on a flat background: the commonest "image not available" page."""
    im = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=max(12, size[0] // 20))
    text = "\n".join(lines)
    box = draw.multiline_textbbox((0, 0), text, font=font, align="center")
    x = (size[0] - (box[2] - box[0])) // 2
    y = (size[1] - (box[3] - box[1])) // 2
    draw.multiline_text((x, y), text, fill=ink, font=font, align="center")
    return _save(im, fmt, **({"quality": 85} if fmt == "JPEG" else {}))


def logo_on_white(size: tuple[int, int] = (480, 360), fmt: str = "PNG") -> bytes:
    """A host's logo (a coloured disc and bar, a word beneath) small in a white frame."""
    w, h = size
    im = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(im)
    r = min(w, h) // 9
    cx, cy = w // 2, h // 2 - r // 2
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(220, 60, 40))
    draw.rectangle((cx - r // 3, cy - r // 2, cx + r // 3, cy + r // 2), fill=(255, 255, 255))
    font = ImageFont.load_default(size=max(10, w // 30))
    draw.text((cx, cy + r + 12), "photohost", fill=(40, 40, 40), font=font, anchor="mt")
    return _save(im, fmt)


def gradient(
    top: tuple[int, int, int],
    bottom: tuple[int, int, int],
    size: tuple[int, int] = (500, 375),
    noise: float = 2.0,
    seed: int = 0,
) -> bytes:
    """A smooth vertical gradient with a little sensor noise: an overcast sky, a snow field."""
    w, h = size
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    rgb = np.asarray(top, float) * (1 - t) + np.asarray(bottom, float) * t
    rgb = np.broadcast_to(rgb, (h, w, 3)).copy()
    rgb += np.random.default_rng(seed).normal(0.0, noise, rgb.shape)
    return _save(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), "JPEG", quality=90)


def product_shot(photo: Path, side: int = 500, fill: float = 0.6) -> bytes:
    """A real photograph pasted on a white square, covering ``fill`` of its width."""
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    with Image.open(photo) as im:
        obj = im.convert("RGB")
        obj.thumbnail((int(side * fill), int(side * fill)), Image.Resampling.LANCZOS)
    canvas.paste(obj, ((side - obj.width) // 2, (side - obj.height) // 2))
    return _save(canvas, "JPEG", quality=90)
