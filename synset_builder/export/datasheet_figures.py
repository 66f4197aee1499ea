"""The datasheet's figures, drawn with Pillow, sized for any number of classes.

Pillow instead of matplotlib: a datasheet is written on every export, and these
take milliseconds where importing and rendering a matplotlib figure takes
seconds. Every figure has a bounded size whatever the export holds: a chart of
1,000 or 21,000 classes shows the largest and smallest ones by name (a row per
class would be a pixel high, or taller than any screen) and a histogram shows
how the rest are spread.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence

from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont, ImageOps

# Up to FULL classes every one is listed and charted; past it, the SHOWN largest and
# the SHOWN smallest are, and a histogram shows the sizes of all of them.
SHOWN = 20
FULL = 2 * SHOWN
HISTOGRAM_BINS = 20
# A sample grid's cell, and the photo inside it (a render worker makes these thumbnails
# of the datasheet's samples from the pixels it has, so the export decodes nothing again).
CELL = 128
THUMB = CELL - 4
COLOURS = {"train": (76, 114, 176), "val": (221, 132, 82), "test": (85, 168, 104)}


def ends(order: Sequence[str]) -> tuple[list[str], int, list[str]]:
    """(head, how many left out, tail) of a list ordered largest first."""
    if len(order) <= FULL:
        return list(order), 0, []
    return list(order[:SHOWN]), len(order) - 2 * SHOWN, list(order[-SHOWN:])


def largest_first(sizes: Mapping[str, int]) -> list[str]:
    return sorted(sizes, key=lambda w: (-sizes[w], w))


def shown_classes(sizes: Mapping[str, int]) -> list[str]:
    """The classes the datasheet names one by one (and draws samples of)."""
    head, _, tail = ends(largest_first(sizes))
    return head + tail


def _png(img: PILImage.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def class_size_chart(
    counts: Mapping[str, Counter[str]], names: Mapping[str, str] | None = None
) -> bytes:
    """Stacked horizontal bars per class and split, largest class first.

    Every row is 18 px with its wnid, the class's name (cut to fit: a wnid alone
    tells a reader nothing) and total; past ``FULL`` classes the middle rows give
    way to one line saying how many classes lie between.
    """
    names = names or {}
    totals = {w: sum(c.values()) for w, c in counts.items()}
    head, omitted, tail = ends(largest_first(totals))
    lines: list[str | None] = [*head, *([None] if omitted else []), *tail]
    row, left, top, width = 18, 230 if names else 110, 40, 520
    height = top + max(1, len(lines)) * row + 30
    img = PILImage.new("RGB", (left + width + 60, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    biggest = max(totals.values(), default=0) or 1
    draw.text((left, 8), "Images per class and split (largest first)", fill="black", font=font)
    x = left + 300
    for split, colour in COLOURS.items():
        draw.rectangle((x, 24, x + 10, 34), fill=colour)
        draw.text((x + 14, 22), split, fill="black", font=font)
        x += 70
    for i, wnid in enumerate(lines):
        y = top + i * row
        if wnid is None:
            draw.text(
                (left, y + 2), f"... {omitted} classes in between ...", fill="grey", font=font
            )
            continue
        x0 = left
        for split, colour in COLOURS.items():
            w = round(width * counts[wnid][split] / biggest)
            if w:
                draw.rectangle((x0, y + 1, x0 + w - 1, y + row - 2), fill=colour)
            x0 += w
        name = names.get(wnid, "")
        label = f"{wnid} {name[:18] + '...' if len(name) > 20 else name}".strip()
        draw.text((4, y + 2), label, fill="black", font=font)
        draw.text((x0 + 4, y + 2), str(totals[wnid]), fill="black", font=font)
    note = f"; the {SHOWN} largest and {SHOWN} smallest shown" if omitted else ""
    draw.text(
        (left, height - 20),
        f"{len(totals)} classes; longest bar {biggest} images{note}",
        fill="black",
        font=font,
    )
    return _png(img)


def size_histogram(sizes: Sequence[int], bins: int = HISTOGRAM_BINS) -> list[tuple[int, int, int]]:
    """(smallest, largest, classes) of equal-width buckets of class sizes, none empty at
    either end; a bucket is one size wide when the sizes span fewer than ``bins``."""
    if not sizes:
        return []
    lo, hi = min(sizes), max(sizes)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    found = Counter((s - lo) // width for s in sizes)
    n = (hi - lo) // width + 1
    return [(lo + b * width, lo + (b + 1) * width - 1, found[b]) for b in range(n)]


def histogram_chart(buckets: Sequence[tuple[int, int, int]]) -> bytes:
    """Vertical bars: how many classes have how many images."""
    left, top, plot_w, plot_h = 50, 40, 560, 200
    img = PILImage.new("RGB", (left + plot_w + 30, top + plot_h + 50), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    small = ImageFont.load_default(size=10)
    draw.text((left, 8), "Classes by number of images", fill="black", font=font)
    tallest = max((b[2] for b in buckets), default=0) or 1
    bar = plot_w / max(1, len(buckets))
    base = top + plot_h
    draw.line((left, base, left + plot_w, base), fill="black")
    for i, (low, high, classes) in enumerate(buckets):
        x0 = left + i * bar
        h = round(plot_h * classes / tallest)
        if h:
            draw.rectangle(
                (x0 + 1, base - h, x0 + max(1.0, bar - 2), base - 1), fill=(76, 114, 176)
            )
        if classes:
            draw.text((x0 + 2, base - h - 12), str(classes), fill="black", font=small)
        if i in (0, len(buckets) // 2, len(buckets) - 1):
            label = str(low) if low == high else f"{low}-{high}"
            draw.text((x0, base + 4), label, fill="black", font=small)
    draw.text((left, base + 24), "images per class", fill="black", font=font)
    return _png(img)


def sample_grid(images: Sequence[bytes | PILImage.Image], columns: int = 4) -> bytes:
    """A JPEG of up to ``columns`` photos a row: photos compress badly as PNG, and these
    grids were most of the datasheet's cost (docs/benchmarks.md, Export).

    ``images``: a photo's encoded bytes, or its ``THUMB`` square thumbnail.
    """
    cell = CELL
    rows = max(1, math.ceil(len(images) / columns))
    grid = PILImage.new("RGB", (columns * cell, rows * cell), (255, 255, 255))
    for i, data in enumerate(images):
        if isinstance(data, PILImage.Image):
            thumb = data
        else:
            with PILImage.open(io.BytesIO(data)) as img:
                img.draft("RGB", (cell, cell))
                thumb = ImageOps.fit(img.convert("RGB"), (THUMB, THUMB))
        grid.paste(thumb, ((i % columns) * cell + 2, (i // columns) * cell + 2))
    buf = io.BytesIO()
    grid.save(buf, "JPEG", quality=85)
    return buf.getvalue()
