"""The datasheet of an export: what is in it, how it was made, what was left out.

Written beside every export as ``datasheet.md`` and ``datasheet.html`` (the same
content; one for the repository, one for a browser) with PNG figures under
``datasheet/``. It follows the questions of "Datasheets for Datasets" that a
builder can answer from the database: composition (classes x splits), collection
(sources, licences, crawl dates, the funnel from candidates to accepted),
labelling (votes per image, precision estimated on gold items) and what was
withheld (ambiguous, taken down, faces blurred). The sample grids are made from
the exported bytes, so they show blurred faces as the trainer will see them.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Consensus, Gold
from synset_builder.export_formats import atomic_write
from synset_builder.export_select import Selection
from synset_builder.splits import SPLITS
from synset_builder.status import COUNTERS, funnel

Block = tuple  # ("h2", text) | ("p", text) | ("table", header, rows) | ("img", path, alt)
FOLDER = "datasheet"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a proportion that behaves on small samples (gold sets are small)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def gold_precision(session: Session) -> tuple[int, int]:
    """(gold items accepted by consensus, of which truly positive)."""
    stmt = (
        select(Gold.answer)
        .join(Consensus, Consensus.candidate_id == Gold.candidate_id)
        .where(Consensus.decision == "accepted")
    )
    answers = list(session.scalars(stmt))
    return len(answers), sum(1 for a in answers if a)


COLOURS = {"train": (76, 114, 176), "val": (221, 132, 82), "test": (85, 168, 104)}


def class_size_chart(counts: dict[str, Counter[str]]) -> bytes:
    """Stacked horizontal bars, largest class first, drawn with Pillow.

    Pillow instead of matplotlib: a datasheet is written on every export, and this
    takes milliseconds where importing and rendering a matplotlib figure takes
    seconds. Past 80 classes the labels go and each class is a one-pixel row.
    """
    from PIL import ImageDraw, ImageFont

    wnids = sorted(counts, key=lambda w: (-sum(counts[w].values()), w))
    labelled = len(wnids) <= 80
    row = 18 if labelled else 2
    left, top, width = (110 if labelled else 20), 40, 520
    height = top + max(1, len(wnids)) * row + 30
    img = PILImage.new("RGB", (left + width + 60, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    biggest = max((sum(c.values()) for c in counts.values()), default=0) or 1
    draw.text((left, 8), "Images per class and split (largest first)", fill="black", font=font)
    x = left + 300
    for split, colour in COLOURS.items():
        draw.rectangle((x, 24, x + 10, 34), fill=colour)
        draw.text((x + 14, 22), split, fill="black", font=font)
        x += 70
    for i, wnid in enumerate(wnids):
        y = top + i * row
        x0 = left
        for split, colour in COLOURS.items():
            w = round(width * counts[wnid][split] / biggest)
            if w:
                draw.rectangle((x0, y + 1, x0 + w - 1, y + row - 2), fill=colour)
            x0 += w
        if labelled:
            draw.text((4, y + 2), wnid, fill="black", font=font)
            draw.text((x0 + 4, y + 2), str(sum(counts[wnid].values())), fill="black", font=font)
    draw.text(
        (left, height - 20),
        f"{len(wnids)} classes; longest bar {biggest} images",
        fill="black",
        font=font,
    )
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def sample_grid(images: Sequence[bytes], cell: int = 128, columns: int = 4) -> bytes:
    rows = max(1, math.ceil(len(images) / columns))
    grid = PILImage.new("RGB", (columns * cell, rows * cell), (255, 255, 255))
    for i, data in enumerate(images):
        with PILImage.open(io.BytesIO(data)) as img:
            img.draft("RGB", (cell, cell))
            thumb = ImageOps.fit(img.convert("RGB"), (cell - 4, cell - 4))
        grid.paste(thumb, ((i % columns) * cell + 2, (i // columns) * cell + 2))
    buf = io.BytesIO()
    grid.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def _table_counts(counter: Counter[str], label: str) -> Block:
    rows = [[k or "(none)", str(v)] for k, v in counter.most_common()]
    return ("table", [label, "images"], rows)


def build_blocks(
    session: Session,
    sel: Selection,
    rows: list[dict[str, str]],
    class_rows: list[dict[str, object]],
    report: dict[str, object],
    params: dict[str, object],
    figures: dict[str, str],
) -> list[Block]:
    per_class: dict[str, Counter[str]] = {str(c["wnid"]): Counter() for c in class_rows}
    for r in rows:
        per_class[r["wnid"]][r["split"]] += 1
    unique = {r["sha256"]: r for r in rows}
    splits: dict[str, int] = dict(report.get("splits") or {})  # type: ignore[call-overload]
    formats: list[str] = list(params.get("formats") or [])  # type: ignore[call-overload]
    blocks: list[Block] = [
        ("h1", "Datasheet"),
        (
            "p",
            f"{len(unique)} images in {len(class_rows)} classes "
            f"(train {splits.get('train', 0)}, val {splits.get('val', 0)}, "
            f"test {splits.get('test', 0)}). Level: {params['level']}; "
            f"split rule: {json.dumps(params['split'])}; formats: {', '.join(map(str, formats))}.",
        ),
        ("h2", "Composition: images per class and split"),
        (
            "table",
            ["index", "wnid", "name", *SPLITS, "total"],
            [
                [str(c["index"]), str(c["wnid"]), str(c["name"])]
                + [str(per_class[str(c["wnid"])][s]) for s in SPLITS]
                + [str(sum(per_class[str(c["wnid"])].values()))]
                for c in class_rows
            ],
        ),
        ("img", figures["chart"], "Bar chart of images per class and split"),
        ("h2", "Collection: the funnel from candidates to accepted"),
        ("p", "Per synset the images were accepted for (before mapping to the export level)."),
    ]
    names = list(COUNTERS)
    stats = [s for s in funnel(session) if s.wnid in sel.contributing]
    blocks.append(
        (
            "table",
            ["wnid", "name", *names],
            [[s.wnid, s.name, *(str(s.counts[n]) for n in names)] for s in stats],
        )
    )
    blocks.append(("h2", "Sources and licences"))
    blocks.append(_table_counts(Counter(r["source"] for r in unique.values()), "source"))
    blocks.append(_table_counts(Counter(r["license"] for r in unique.values()), "licence"))
    dates = sorted(e.fetched_at for e in sel.entries if e.fetched_at is not None)
    if dates:
        months = Counter(d.strftime("%Y-%m") for d in dates)
        blocks.append(("p", f"Crawled between {dates[0]:%Y-%m-%d} and {dates[-1]:%Y-%m-%d}."))
        blocks.append(
            ("table", ["month", "images"], [[m, str(n)] for m, n in sorted(months.items())])
        )
    blocks.append(("h2", "Labelling: votes and precision"))
    votes = Counter(int(r["votes_yes"]) + int(r["votes_no"]) for r in unique.values())
    mean_votes = sum(k * v for k, v in votes.items()) / max(1, len(unique))
    mean_p = sum(float(r["p_yes"]) for r in unique.values()) / max(1, len(unique))
    blocks.append(
        ("p", f"Mean votes per image {mean_votes:.2f}; mean consensus P(yes) {mean_p:.3f}.")
    )
    blocks.append(
        ("table", ["votes", "images"], [[str(k), str(v)] for k, v in sorted(votes.items())])
    )
    n_gold, true_gold = gold_precision(session)
    if n_gold:
        lo, hi = wilson(true_gold, n_gold)
        blocks.append(
            (
                "p",
                f"Estimated precision on gold items: {true_gold}/{n_gold} accepted gold items are "
                f"true positives = {true_gold / n_gold:.3f} (95% interval {lo:.3f}-{hi:.3f}).",
            )
        )
    else:
        blocks.append(("p", "No gold item was accepted, so precision is not estimated from gold."))
    blocks.append(("h2", "Left out and privacy"))
    left = [
        ["ambiguous (accepted for unrelated classes)", str(len(sel.ambiguous))],
        ["outside the chosen classes", str(sel.outside)],
        ["other licence", str(sel.license_filtered)],
        ["taken down", str(sel.taken_down)],
        ["classes below --min-per-class", str(len(sel.dropped_classes))],
        ["images over --max-per-class", str(sum(sel.capped.values()))],
        ["faces blurred", str(report.get("faces_blurred", 0))],
    ]
    blocks.append(("table", ["what", "count"], left))
    blocks.append(
        (
            "p",
            "EXIF, XMP, IPTC and comments (GPS positions above all) are removed from "
            "every exported file.",
        )
    )
    blocks.append(("h2", "Samples (train split, as exported)"))
    for c in class_rows:
        if str(c["wnid"]) in figures:
            blocks.append(("h3", f"{c['wnid']} {c['name']}"))
            blocks.append(("img", figures[str(c["wnid"])], f"Sample images of {c['name']}"))
    return blocks


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            out.append(block[1])
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
        elif kind == "table":
            header, rows = block[1], block[2]
            cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
        out.append("")
    return "\n".join(out)


def to_html(blocks: list[Block]) -> str:
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Datasheet</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>",
        "</head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "img":
            out.append(f"<p><img src='{e(block[1])}' alt='{e(block[2])}'></p>")
        elif kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in block[1])
            body = "".join(
                "<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in block[2]
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
    out.append("</body></html>")
    return "\n".join(out)


def write_datasheet(
    session: Session,
    out: Path,
    sel: Selection,
    rows: list[dict[str, str]],
    class_rows: list[dict[str, object]],
    samples: dict[str, list[bytes]],
    *,
    report: dict[str, object],
    params: dict[str, object],
) -> list[str]:
    """Write the datasheet and its figures; the paths written, relative to ``out``."""
    per_class: dict[str, Counter[str]] = {str(c["wnid"]): Counter() for c in class_rows}
    for r in rows:
        per_class[r["wnid"]][r["split"]] += 1
    written: list[str] = []

    def put(rel: str, data: bytes) -> str:
        atomic_write(out / rel, data)
        written.append(rel)
        return rel

    figures = {"chart": put(f"{FOLDER}/class_sizes.png", class_size_chart(per_class))}
    for wnid, images in sorted(samples.items()):
        figures[wnid] = put(f"{FOLDER}/samples/{wnid}.png", sample_grid(images))
    blocks = build_blocks(session, sel, rows, class_rows, report, params, figures)
    put("datasheet.md", to_markdown(blocks).encode())
    put("datasheet.html", to_html(blocks).encode())
    return written
