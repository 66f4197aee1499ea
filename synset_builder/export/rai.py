"""The datasheet's answers as Croissant's responsible-AI (``rai:``) fields.

Hubs show these fields beside the dataset, so they must say what the datasheet
says. They are taken from the datasheet's own blocks by section (whatever a
section gains, an audited precision in *Labelling* say, reaches croissant.json
too) plus the few facts the datasheet states as tables (sources, what was left
out) and the takedown contact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from synset_builder.export.datasheet import Block, SheetStats
from synset_builder.export.protocol import bias_text, source_kind

# Croissant RAI's suggested values for rai:dataCollectionType, by source kind.
COLLECTION_TYPE = {
    "openverse": "Web API",
    "wikimedia": "Web API",
    "flickr": "Web API",
    "urls": "Web Scraping",
    "dir": "Others",
}


def section(blocks: Sequence[Block], heading: str, *, tables: bool = True) -> str:
    """The paragraphs (and tables) under the ``h2`` that starts with ``heading``, as text."""
    out: list[str] = []
    inside = False
    for block in blocks:
        if block[0] in ("h1", "h2"):
            inside = block[0] == "h2" and str(block[1]).startswith(heading)
        elif inside and block[0] == "p":
            out.append(str(block[1]))
        elif inside and tables and block[0] == "table":
            header, rows = block[1], block[2]
            cells = ", ".join(" ".join(map(str, row)) for row in rows)
            out.append(f"{' / '.join(map(str, header))}: {cells}.")
    return " ".join(out)


def _kinds(sources: Mapping[str, int]) -> list[str]:
    kinds = {COLLECTION_TYPE.get(source_kind(s), "Others") for s in sources if s}
    return sorted(kinds) or ["Others"]


def _counted(counter: Mapping[str, int], limit: int = 10) -> str:
    top = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return ", ".join(f"{k or '(none)'} {v}" for k, v in top)


def rai_fields(
    blocks: Sequence[Block], stats: SheetStats, report: Mapping[str, object], *, contact: str
) -> dict[str, object]:
    """The ``rai:`` properties of croissant.json, without the prefix."""
    mean_votes = sum(k * v for k, v in stats.votes.items()) / max(1, stats.images)
    spread = ", ".join(f"{n} images with {k} votes" for k, n in sorted(stats.votes.items()))
    labelling = section(blocks, "Labelling")
    left_out = section(blocks, "Left out")
    return {
        "dataCollection": (
            section(blocks, "Sources", tables=False)
            + f" Images per source: {_counted(stats.sources)}."
        ).strip(),
        "dataCollectionType": _kinds(stats.sources),
        "dataCollectionTimeframe": [t[:10] for t in (stats.first_fetch, stats.last_fetch) if t],
        "dataAnnotationProtocol": labelling,
        "dataAnnotationPlatform": ["synset-builder annotator web app"],
        "annotationsPerItem": f"Mean {mean_votes:.2f} votes per image ({spread}).",
        "dataBiases": [
            bias_text(stats.sources),
            f"Sources: {_counted(stats.sources)}. Licences: {_counted(stats.licences)}.",
            "Images accepted for unrelated classes are left out (not given one label), "
            "so classes that co-occur in photos are thinner. " + left_out,
        ],
        "dataLimitations": [
            "Labels are crowd decisions, not ground truth: the precision stated in "
            "dataAnnotationProtocol is what gold items or audits measured.",
            "Each image has one label (the most specific accepted class) unless the "
            "export is multi-label.",
        ],
        "personalSensitiveInformation": (
            "EXIF, XMP, IPTC and comments (GPS positions above all) are removed from every "
            f"file; {report.get('faces_blurred', 0)} faces were blurred. People may still "
            "appear in images."
        ),
        "dataUseCases": [
            "Training and evaluating image classifiers on the exported classes.",
        ],
        "dataReleaseMaintenancePlan": (
            f"Takedown requests: {contact}. A takedown withdraws the image from every later "
            "export, and `synset verify` flags earlier exports that still hold it."
        ),
    }
