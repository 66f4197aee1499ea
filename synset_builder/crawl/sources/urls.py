"""``urls:FILE``: a curator's own list of ``wnid,url[,license,creator,landing_url]``.

CSV or TSV (tab if the name ends in ``.tsv`` or the first line has a tab), with
or without a header row. The file is read once and kept per wnid, so paging is
a slice; lines for wnids not being crawled are ignored.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from synset_builder.config import Settings
from synset_builder.crawl.sources import Hit, SearchPage, SynsetRef
from synset_builder.errors import InvalidInput, NotFound

PAGE_SIZE = 500
COLUMNS = ("wnid", "url", "license", "creator", "landing_url")


class UrlListSource:
    name = "urls"
    uses_queries = False
    page_size = PAGE_SIZE

    def __init__(self, arg: str | None, settings: Settings) -> None:
        if not arg:
            raise InvalidInput("The urls source needs a file: --source urls:FILE.")
        self.path = Path(arg)
        if not self.path.is_file():
            raise NotFound(f"The URL list {self.path} does not exist.")
        self.spec = f"urls:{self.path.resolve()}"
        self._rows: dict[str, list[list[str]]] | None = None

    def _load(self) -> dict[str, list[list[str]]]:
        # Read and check the whole file before the first fetch: a bad list writes nothing.
        if self._rows is None:
            try:
                self._rows = self._read()
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"The URL list {self.path} is not UTF-8 text (byte {exc.start})."
                ) from exc
            except csv.Error as exc:
                raise InvalidInput(f"The URL list {self.path} is not valid CSV: {exc}.") from exc
        return self._rows

    def _read(self) -> dict[str, list[list[str]]]:
        with self.path.open(newline="", encoding="utf-8") as fh:
            first = fh.readline()
            fh.seek(0)
            tab = self.path.suffix.lower() == ".tsv" or "\t" in first
            rows: dict[str, list[list[str]]] = defaultdict(list)
            for line_no, row in enumerate(csv.reader(fh, delimiter="\t" if tab else ","), 1):
                if not row or row[0].strip().startswith("#"):
                    continue
                if line_no == 1 and row[0].strip().lower() == "wnid":
                    continue
                if len(row) < 2 or not row[1].strip():
                    raise InvalidInput(
                        f"Line {line_no} of {self.path} has no URL; expected "
                        "wnid,url[,license,creator,landing_url]."
                    )
                if any("\x00" in c for c in row):
                    raise InvalidInput(f"Line {line_no} of {self.path} contains a NUL byte.")
                rows[row[0].strip()].append([c.strip() for c in row])
        return dict(rows)

    def search(self, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
        rows = self._load().get(synset.wnid, [])
        start = (page - 1) * self.page_size
        hits = []
        for i, row in enumerate(rows[start : start + self.page_size], start + 1):
            extra = dict(zip(COLUMNS[2:], row[2:], strict=False))
            hits.append(
                Hit(
                    url=row[1],
                    source=self.name,
                    query=None,
                    rank=i,
                    license=extra.get("license") or None,
                    creator=extra.get("creator") or None,
                    landing_url=extra.get("landing_url") or None,
                )
            )
        return SearchPage(hits, last=start + self.page_size >= len(rows))
