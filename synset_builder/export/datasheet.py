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

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.db.models import Consensus, Gold
from synset_builder.decision import Decision
from synset_builder.export.atomic import atomic_write
from synset_builder.export.datasheet_figures import (
    FULL,
    SHOWN,
    class_size_chart,
    ends,
    histogram_chart,
    largest_first,
    sample_grid,
    size_histogram,
)
from synset_builder.export.datasheet_render import Block, to_html, to_markdown
from synset_builder.export.protocol import (
    collection_text,
    labelling_text,
    methods_of,
    model_based,
)
from synset_builder.export.select import Selection
from synset_builder.export.splits import SPLITS, SplitSpec, missing_line
from synset_builder.export.spool import Entry
from synset_builder.review.figures import pooled, wilson
from synset_builder.status import COUNTERS, funnel

FOLDER = "datasheet"
# Licence strings come from the sources as they spell them: a table of the commonest.
LICENCES_SHOWN = 30


@dataclass
class SheetStats:
    """What the datasheet counts, added up row by row as the export writes them.

    Counting as the rows go by, instead of from a list of every row afterwards, is
    what keeps the export's memory flat: at ILSVRC scale that list was gigabytes.
    Per-image figures (sources, licences, votes, dates) count a multi-label image
    once, at its first label.
    """

    per_class: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    images: int = 0
    sources: Counter[str] = field(default_factory=Counter)
    licences: Counter[str] = field(default_factory=Counter)
    votes: Counter[int] = field(default_factory=Counter)
    p_yes_sum: float = 0.0
    months: Counter[str] = field(default_factory=Counter)
    first_fetch: str | None = None  # as Entry.fetched_at
    last_fetch: str | None = None
    # Encoded photos, or thumbnails made by the render workers (sample_grid takes both).
    samples: defaultdict[str, list[bytes | PILImage.Image]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def add(self, entry: Entry, split: str, *, first: bool) -> None:
        """Count one manifest row (``first``: the image's first label).

        Dates are compared and cut as the text the database gave (``2026-03-01
        12:00...`` -> month ``2026-03``), every one in the same zone and format.
        """
        self.per_class[entry.wnid][split] += 1
        if not first:
            return
        self.images += 1
        self.sources[entry.source] += 1
        self.licences[entry.license] += 1
        self.votes[entry.votes_yes + entry.votes_no] += 1
        self.p_yes_sum += round(entry.p_yes, 4)  # as the manifest prints it
        fetched_at = entry.fetched_at
        if fetched_at:
            self.months[fetched_at[:7]] += 1
            if self.first_fetch is None or fetched_at < self.first_fetch:
                self.first_fetch = fetched_at
            if self.last_fetch is None or fetched_at > self.last_fetch:
                self.last_fetch = fetched_at

    def splits(self) -> dict[str, int]:
        """Manifest rows per split (a multi-label image counts once per label)."""
        total: Counter[str] = Counter()
        for c in self.per_class.values():
            total.update(c)
        return {s: total[s] for s in SPLITS if total[s]}


def gold_precision(session: Session) -> tuple[int, int]:
    """(gold items accepted by consensus, of which truly positive)."""
    stmt = (
        select(Gold.answer)
        .join(Consensus, Consensus.candidate_id == Gold.candidate_id)
        .where(Consensus.decision == Decision.accepted)
    )
    answers = list(session.scalars(stmt))
    return len(answers), sum(1 for a in answers if a)


def _table_counts(counter: Counter[str], label: str, limit: int | None = None) -> Block:
    common = counter.most_common()
    rows = [[k or "(none)", str(v)] for k, v in common[:limit]]
    if limit is not None and len(common) > limit:
        rest = common[limit:]
        rows.append([f"({len(rest)} other {label}s)", str(sum(v for _, v in rest))])
    return ("table", [label, "images"], rows)


def _composition(stats: SheetStats, class_rows: list[dict[str, object]]) -> list[Block]:
    """Every class up to FULL of them; past that the largest and smallest, and a histogram."""
    by_wnid = {str(c["wnid"]): c for c in class_rows}
    totals = {w: sum(stats.per_class[w].values()) for w in by_wnid}

    def line(wnid: str) -> list[str]:
        c, split = by_wnid[wnid], stats.per_class[wnid]
        return [str(c["index"]), wnid, str(c["name"]), *(str(split[s]) for s in SPLITS)] + [
            str(totals[wnid])
        ]

    header = ["index", "wnid", "name", *SPLITS, "total"]
    head, omitted, tail = ends(largest_first(totals))
    if not omitted:
        return [("table", header, [line(str(c["wnid"])) for c in class_rows])]
    sizes = sorted(totals.values())
    gap = ["...", f"({omitted} classes)", "", *([""] * len(SPLITS)), ""]
    buckets = size_histogram(sizes)
    return [
        (
            "p",
            f"{len(totals)} classes: the {SHOWN} largest and the {SHOWN} smallest are listed; "
            f"classes.json and manifest.csv hold every one. Images per class: smallest "
            f"{sizes[0]}, median {sizes[len(sizes) // 2]}, largest {sizes[-1]}.",
        ),
        ("table", header, [line(w) for w in head] + [gap] + [line(w) for w in tail]),
        (
            "table",
            ["images per class", "classes"],
            [[str(lo) if lo == hi else f"{lo}-{hi}", str(n)] for lo, hi, n in buckets],
        ),  # fmt: skip
    ]


def _audited(session: Session, sel: Selection, mean_p: float, by_model: bool) -> Block:
    """The blind audit's measured precision beside the consensus model's own estimate:
    the model's belief is no measurement, and a reader should see both. Under majority
    vote P(yes) is a share of votes, and is called that."""
    rows = [s for s in funnel(session) if s.wnid in sel.contributing]
    per = {k: r.audit for k, r in enumerate(rows) if r.audit is not None}
    found = pooled(per, {k: rows[k].counts["accepted"] for k in per})
    if by_model:
        model = f"The consensus model's own estimate of precision (mean P(yes)) is {mean_p:.3f}"
    else:
        model = (
            f"Mean P(yes) {mean_p:.3f} is the share of yes votes (majority vote), "
            "not an estimate of precision"
        )
    if found.precision is None:
        return ("p", f"{model}; no blind audit was judged for these classes, so precision "
                     "is not measured (synset audit start WNID).")  # fmt: skip
    return (
        "p",
        f"{model}; a blind audit by curators measured {found.precision:.3f} (95% Wilson "
        f"interval {found.low:.3f}-{found.high:.3f}; {found.judged} items judged in "
        f"{found.synsets} of {len(rows)} synsets, weighted by accepted count).",
    )


def _funnel(session: Session, sel: Selection) -> Block:
    """The funnel of the synsets the images came from; past FULL, those with the most and
    the fewest accepted images, and always the sum over all of them."""
    names = list(COUNTERS)
    stats = [s for s in funnel(session) if s.wnid in sel.contributing]
    accepted = {s.wnid: s.counts["accepted"] for s in stats}
    head, omitted, tail = ends(largest_first(accepted))
    shown = set(head + tail)
    rows = [[s.wnid, s.name, *(str(s.counts[n]) for n in names)] for s in stats if s.wnid in shown]
    if omitted:
        by = {r[0]: r for r in rows}
        rows = [by[w] for w in head] + [["...", f"({omitted} synsets)"] + [""] * len(names)]
        rows += [by[w] for w in tail]
    total = [f"all {len(stats)}", "", *(str(sum(s.counts[n] for s in stats)) for n in names)]
    return ("table", ["wnid", "name", *names], [*rows, total])


def _collection(session: Session, sel: Selection, stats: SheetStats) -> list[Block]:
    """Where the images came from: the funnel, sources, licences, crawl months."""
    blocks: list[Block] = [
        ("h2", "Collection: the funnel from candidates to accepted"),
        ("p", "Per synset the images were accepted for (before mapping to the export level)."),
        _funnel(session, sel),
        ("h2", "Sources and licences"),
        ("p", collection_text(stats.sources)),
        _table_counts(stats.sources, "source", LICENCES_SHOWN),
        _table_counts(stats.licences, "licence", LICENCES_SHOWN),
    ]
    if stats.first_fetch is not None and stats.last_fetch is not None:
        blocks.append(
            ("p", f"Crawled between {stats.first_fetch[:10]} and {stats.last_fetch[:10]}.")
        )
        months = sorted(stats.months.items())
        blocks.append(("table", ["month", "images"], [[m, str(n)] for m, n in months]))
    return blocks


def _labelling(session: Session, sel: Selection, stats: SheetStats) -> list[Block]:
    """How sure the labels are: votes per image, the audit, precision on gold."""
    mean_votes = sum(k * v for k, v in stats.votes.items()) / max(1, stats.images)
    mean_p = stats.p_yes_sum / max(1, stats.images)
    votes = sorted(stats.votes.items())
    methods = methods_of(session, sel.contributing)
    blocks: list[Block] = [
        ("h2", "Labelling: votes and precision"),
        ("p", labelling_text(session, methods)),
        ("p", f"Mean votes per image {mean_votes:.2f}; mean consensus P(yes) {mean_p:.3f}."),
        _audited(session, sel, mean_p, model_based(methods)),
        ("table", ["votes", "images"], [[str(k), str(v)] for k, v in votes]),
    ]
    n_gold, true_gold = gold_precision(session)
    if not n_gold:
        return blocks  # labelling_text says whether gold items were used at all
    lo, hi = wilson(true_gold, n_gold)
    said = (
        f"Estimated precision on gold items: {true_gold}/{n_gold} accepted gold items are "
        f"true positives = {true_gold / n_gold:.3f} (95% interval {lo:.3f}-{hi:.3f})."
    )
    return [*blocks, ("p", said)]


def _left_out(sel: Selection, report: dict[str, object]) -> list[Block]:
    """What the export leaves out and why, and what it strips from every file."""
    left = [
        ["ambiguous (accepted for unrelated classes)", str(len(sel.ambiguous))],
        ["outside the chosen classes", str(sel.outside)],
        ["other licence", str(sel.license_filtered)],
        ["taken down", str(sel.taken_down)],
        ["classes below --min-per-class", str(len(sel.dropped_classes))],
        ["images over --max-per-class", str(sum(sel.capped.values()))],
        ["faces blurred", str(report.get("faces_blurred", 0))],
    ]
    privacy = (
        "EXIF, XMP, IPTC and comments (GPS positions above all) are removed from "
        "every exported file."
    )
    return [("h2", "Left out and privacy"), ("table", ["what", "count"], left), ("p", privacy)]


def _samples(class_rows: list[dict[str, object]], figures: dict[str, str]) -> list[Block]:
    """A grid of exported train images per class that has one."""
    blocks: list[Block] = [("h2", "Samples (train split, as exported)")]
    if len(class_rows) > FULL:
        blocks.append(("p", "Of the classes listed above."))
    for c in class_rows:
        if str(c["wnid"]) in figures:
            blocks.append(("h3", f"{c['wnid']} {c['name']}"))
            blocks.append(("img", figures[str(c["wnid"])], f"Sample images of {c['name']}"))
    return blocks


def _missing(report: dict[str, object], stats: SheetStats) -> list[Block]:
    """The classes some split lacks, said where the reader looks at the class table."""
    missing: dict[str, list[str]] = dict(report.get("missing_from_splits") or {})  # type: ignore[call-overload]
    if not missing:
        return []
    sizes = {w: sum(stats.per_class[w].values()) for w in missing}
    return [("p", "Warning: " + missing_line(missing, sizes))]


def build_blocks(
    session: Session,
    sel: Selection,
    stats: SheetStats,
    class_rows: list[dict[str, object]],
    report: dict[str, object],
    params: dict[str, object],
    figures: dict[str, str],
) -> list[Block]:
    """The datasheet as format-free blocks: Markdown, HTML and croissant.json read them."""
    splits: dict[str, int] = dict(report.get("splits") or {})  # type: ignore[call-overload]
    formats: list[str] = list(params.get("formats") or [])  # type: ignore[call-overload]
    rule = SplitSpec.from_json(params["split"]).describe()  # type: ignore[arg-type]
    blocks: list[Block] = [
        ("h1", "Datasheet"),
        (
            "p",
            f"{stats.images} images in {len(class_rows)} classes "
            f"(train {splits.get('train', 0)}, val {splits.get('val', 0)}, "
            f"test {splits.get('test', 0)}). Level: {params['level']}; "
            f"splits: {rule}; formats: {', '.join(map(str, formats))}.",
        ),
        ("h2", "Composition: images per class and split"),
        *_composition(stats, class_rows),
        *_missing(report, stats),
        ("img", figures["chart"], "Bar chart of images per class and split"),
    ]
    if "histogram" in figures:
        blocks.append(("img", figures["histogram"], "Histogram of images per class"))
    return [
        *blocks,
        *_collection(session, sel, stats),
        *_labelling(session, sel, stats),
        *_left_out(sel, report),
        *_samples(class_rows, figures),
    ]


def write_datasheet(
    session: Session,
    out: Path,
    sel: Selection,
    stats: SheetStats,
    class_rows: list[dict[str, object]],
    *,
    report: dict[str, object],
    params: dict[str, object],
) -> tuple[list[str], list[Block]]:
    """Write the datasheet and its figures; the paths written, relative to ``out``, and
    the blocks (croissant.json's responsible-AI fields quote them)."""
    written: list[str] = []

    def put(rel: str, data: bytes) -> str:
        atomic_write(out / rel, data)
        written.append(rel)
        return rel

    counts = {str(c["wnid"]): stats.per_class[str(c["wnid"])] for c in class_rows}
    names = {str(c["wnid"]): str(c["name"]) for c in class_rows}
    figures = {"chart": put(f"{FOLDER}/class_sizes.png", class_size_chart(counts, names))}
    if len(counts) > FULL:
        buckets = size_histogram([sum(c.values()) for c in counts.values()])
        figures["histogram"] = put(f"{FOLDER}/class_size_histogram.png", histogram_chart(buckets))
    for wnid, images in sorted(stats.samples.items()):
        if images:
            figures[wnid] = put(f"{FOLDER}/samples/{wnid}.jpg", sample_grid(images))
    blocks = build_blocks(session, sel, stats, class_rows, report, params, figures)
    put("datasheet.md", to_markdown(blocks).encode())
    put("datasheet.html", to_html(blocks).encode())
    return written, blocks
