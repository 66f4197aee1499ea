"""The datasheet under pressure: any number of classes, and text from hostile sources.

Synset names come from curators and WordNet, licences and sources from whatever a
crawled site sent; ``datasheet.md`` is rendered by GitHub and other Markdown
viewers, ``datasheet.html`` by browsers. Neither may turn that text into markup:
no tags, links, emphasis, headings or broken table rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from PIL import Image as PILImage
from sqlalchemy import String, cast, literal, select, update

from synset_builder.db.models import Candidate, Consensus, Gold, Synset
from synset_builder.export.datasheet_figures import FULL, class_size_chart, size_histogram
from synset_builder.export.run import ExportConfig, run_export
from tests.export_data import LEAVES, WHIPPET, build_collection

HOSTILE_NAME = (
    "whippet <img src=x onerror=alert(1)> *loud* __bold__ [click](javascript:alert(1)) "
    "| cell `code` ~~gone~~ $x^2$ &amp; www.evil.example http://evil.example/a\n"
    "# injected heading\r\n- list item"
)
HOSTILE_LICENCE = "<script>alert(2)</script> | [cc](http://evil.example) **by**"


@pytest.mark.parametrize("n", [1, FULL, FULL + 1, 81, 150, 5000])
def test_class_size_chart_draws_any_number_of_classes(n: int) -> None:
    counts = {f"n{i:08d}": Counter(train=1 + i % 50, val=i % 7, test=i % 5) for i in range(n)}
    with PILImage.open(io.BytesIO(class_size_chart(counts))) as chart:
        chart.load()
        assert chart.format == "PNG" and chart.width >= 400
        # A row per class up to FULL, then the largest and smallest with a gap line.
        assert chart.height <= 40 + (FULL + 1) * 18 + 30


def test_size_histogram_puts_every_class_in_one_bucket() -> None:
    sizes = [1, 1, 2, 50, 51, 999, 1000, 1000, 640, 732]
    buckets = size_histogram(sizes, bins=20)
    assert sum(n for _, _, n in buckets) == len(sizes)
    assert buckets[0][0] == 1 and buckets[-1][1] >= 1000
    assert buckets[0][2] > 0 and buckets[-1][2] > 0
    widths = {hi - lo for lo, hi, _ in buckets}
    assert len(widths) == 1 and len(buckets) <= 20
    for (_, hi, _), (lo, _, _) in zip(buckets, buckets[1:], strict=False):
        assert lo == hi + 1
    for s in sizes:
        assert sum(1 for lo, hi, _ in buckets if lo <= s <= hi) == 1
    assert size_histogram([7, 7, 7]) == [(7, 7, 3)]
    assert size_histogram([]) == []


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.row_cells: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.row_cells.append(0)
        elif tag in ("td", "th"):
            self.row_cells[-1] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(document: str) -> Tags:
    tags = Tags()
    tags.feed(document)
    return tags


def assert_only_our_markup(doc: Tags) -> None:
    names = Counter(tag for tag, _ in doc.tags)
    for tag in ("script", "a", "em", "strong", "code", "s", "del", "li", "ul", "math"):
        assert names[tag] == 0, f"<{tag}> made from outside text"
    assert names["h1"] == 1
    for tag, attrs in doc.tags:
        if tag == "img":
            assert set(attrs) == {"src", "alt"}, attrs  # no onerror
            assert (attrs["src"] or "").startswith("datasheet/"), attrs


def test_hostile_names_and_licences_stay_text_in_the_datasheet(
    session, tmp_path: Path, photos: list[Path]
) -> None:
    col = build_collection(session, tmp_path / "data", photos, per_class=10)
    session.execute(update(Synset).where(Synset.wnid == WHIPPET).values(name=HOSTILE_NAME))
    whippet = session.scalar(select(Synset.id).where(Synset.wnid == WHIPPET))
    session.execute(
        update(Candidate).where(Candidate.synset_id == whippet).values(license=HOSTILE_LICENCE)
    )
    out = tmp_path / "out"
    run_export(session, col.data_dir, ExportConfig(out=out, workers=1), database="test")

    md = (out / "datasheet.md").read_text()
    # Rendered as GitHub would: tables, strikethrough, autolinks, raw HTML passed through.
    rendered = parsed(MarkdownIt("gfm-like").render(md))
    assert_only_our_markup(rendered)
    text = "".join(rendered.text)
    flat_name = " ".join(HOSTILE_NAME.split())
    assert flat_name in " ".join(text.split())  # shown, as the characters it has
    assert "<script>alert(2)</script> | [cc](http://evil.example) **by**" in text
    # Every table row kept its cells: a "|" in a name did not open a new one.
    first_rows = [n for n in rendered.row_cells if n]
    composition = first_rows[: 1 + len(LEAVES)]
    assert set(composition) == {7}  # index, wnid, name, train, val, test, total
    assert not any(line.startswith(("# injected", "- list")) for line in md.splitlines())

    page = parsed((out / "datasheet.html").read_text())
    assert_only_our_markup(page)
    page_text = "".join(page.text)
    assert HOSTILE_NAME.split("\n")[0] in page_text and HOSTILE_LICENCE in page_text


def _rai(out: Path) -> dict[str, object]:
    doc = json.loads((out / "croissant.json").read_text())
    return {k.removeprefix("rai:"): v for k, v in doc.items() if k.startswith("rai:")}


def test_collection_and_labelling_are_told_from_the_data(session, tmp_path, photos) -> None:
    """The first user trial: a local `dir:` import decided by majority vote was described
    as WordNet searches, gold items and the dynamic consensus."""
    col = build_collection(session, tmp_path / "data", photos, per_class=3)
    searched = tmp_path / "searched"
    run_export(session, col.data_dir, ExportConfig(out=searched, workers=1), database="t")
    rai = _rai(searched)
    assert "searching Openverse" in str(rai["dataCollection"])
    assert "Wikimedia Commons" in str(rai["dataCollection"])
    assert "dynamic consensus model" in str(rai["dataAnnotationProtocol"])
    assert "Gold items with known answers" in str(rai["dataAnnotationProtocol"])
    assert "WordNet lemmas" in str(rai["dataBiases"])
    # Now as the trial had it: a local folder, majority vote, no gold, no licences.
    home = literal("file:///home/curator/photos/") + cast(Candidate.id, String) + ".jpg"
    session.execute(update(Candidate).values(source="dir", license=None, url=home))
    session.execute(update(Consensus).values(method="majority"))
    session.query(Gold).delete()
    session.flush()
    local = tmp_path / "local"
    run_export(session, col.data_dir, ExportConfig(out=local, workers=1), database="t")
    rai = _rai(local)
    collection, protocol = str(rai["dataCollection"]), str(rai["dataAnnotationProtocol"])
    assert "imported from a local folder" in collection and "WordNet" not in collection
    assert "majority vote (no model)" in protocol
    for claim in ("gold", "Gold", "dynamic", "model's own estimate"):
        assert claim not in protocol, claim
    assert "share of yes votes" in protocol
    assert "WordNet" not in str(rai["dataBiases"])
    sheet = (local / "datasheet.md").read_text()
    assert "imported from a local folder" in sheet and "own estimate" not in sheet
    doc = json.loads((local / "croissant.json").read_text())
    assert doc["license"] and "have no recorded licence" in doc["license"][0]
    # The curator's disk layout is not published: a local file has no public address.
    with (local / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["url"] == "" and r["source"] == "dir" for r in rows)
    for path in local.rglob("*"):
        if path.suffix in (".csv", ".json", ".md", ".html"):
            assert "/home/curator" not in path.read_text(errors="replace"), path


def test_the_chart_names_classes_and_the_split_rule_is_words(session, tmp_path, photos) -> None:
    counts = {"n02084071": Counter(train=3), "n01503061": Counter(train=2)}
    bare = PILImage.open(io.BytesIO(class_size_chart(counts)))
    named = PILImage.open(io.BytesIO(class_size_chart(counts, {"n02084071": "dog"})))
    assert named.width > bare.width  # room for "n02084071 dog" left of the bars
    col = build_collection(session, tmp_path / "data", photos, per_class=3)
    out = tmp_path / "out"
    run_export(session, col.data_dir, ExportConfig(out=out, workers=1), database="t")
    first = (out / "datasheet.md").read_text().splitlines()[2]
    assert "splits: 80% train, 10% val, 10% test of each class (seed 0)" in first
    assert "fractions" not in first
