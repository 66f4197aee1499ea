"""``dir:PATH``: import an existing collection in place, one sub-folder per synset.

Sub-folders are matched to a synset by wnid, then by lemma or name (case and
``_``/space ignored). Files are read where they are and registered with their
absolute path, so a collection is never copied twice; ``--max-side`` is the one
case where a (smaller) copy goes into the store.
"""

from __future__ import annotations

from pathlib import Path

from synset_builder.config import Settings
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.sources import Hit, SearchPage, SynsetRef

PAGE_SIZE = 500
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").lower().split())


class DirSource:
    name = "dir"
    uses_queries = False
    page_size = PAGE_SIZE

    def __init__(self, arg: str | None, settings: Settings) -> None:
        if not arg:
            raise InvalidInput("The dir source needs a folder: --source dir:PATH.")
        self.root = Path(arg).resolve()
        if not self.root.is_dir():
            raise NotFound(f"The folder {self.root} does not exist.")
        self.spec = f"dir:{self.root}"
        self._folders = {_key(p.name): p for p in sorted(self.root.iterdir()) if p.is_dir()}
        self._files: dict[str, list[Path]] = {}

    def _folder(self, synset: SynsetRef) -> Path | None:
        for name in (synset.wnid, *synset.lemmas, synset.name):
            folder = self._folders.get(_key(name))
            if folder is not None:
                return folder
        return None

    def search(self, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
        if synset.wnid not in self._files:
            folder = self._folder(synset)
            self._files[synset.wnid] = (
                sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
                if folder
                else []
            )
        files = self._files[synset.wnid]
        start = (page - 1) * self.page_size
        hits = [
            Hit(
                url=path.as_uri(),
                source=self.name,
                query=None,
                rank=i,
                title=path.name,
                local_path=str(path),
            )
            for i, path in enumerate(files[start : start + self.page_size], start + 1)
        ]
        return SearchPage(hits, last=start + self.page_size >= len(files))
