"""``dir:PATH``: import an existing collection in place, one sub-folder per synset.

Sub-folders are matched to a synset by wnid, lemma or name, with case, ``_`` and
spaces ignored and plurals reduced by WordNet's morphy ("Ants" is ant). A
collection split first (``train/ants``, ``val/ants``) is matched one level down
when no top-level folder matches, and the synset takes the files of every split.
Folders that match no target are named with the nearest targets
(:meth:`DirSource.unmatched`), because an import that finds nothing must say why.
Files are read where they are and registered with their absolute path, so a
collection is never copied twice; ``--max-side`` is the one case where a
(smaller) copy goes into the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from difflib import SequenceMatcher
from pathlib import Path

from synset_builder.config import Settings
from synset_builder.crawl.sources import Hit, SearchPage, SynsetRef
from synset_builder.errors import ConfigError, InvalidInput, NotFound

PAGE_SIZE = 500
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
# Unmatched folders given suggestions (each costs a comparison with every target).
SUGGEST_AT_MOST = 20


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").lower().split())


def printable(name: str) -> str:
    """A folder name fit for a terminal: control characters (a newline, ESC) escaped.

    Folder names come from whoever made the collection; one could forge a line of
    output or recolour the terminal.
    """
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)


def _index(folders: list[Path], forms: Callable[[Path], Iterable[str]]) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for folder in folders:
        for form in forms(folder):
            index.setdefault(form, []).append(folder)
    return index


def _lookup(index: dict[str, list[Path]], names: set[str]) -> list[Path]:
    return sorted({p for name in names for p in index.get(name, ())})


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []  # unreadable: it simply holds nothing to import


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
        self.settings = settings
        self._tops = _subdirs(self.root)
        self._inner = {top: _subdirs(top) for top in self._tops}
        self._forms: dict[str, frozenset[str]] = {}
        # Top-level folders, then split ones: each indexed by exact name, and (built
        # the first time a synset needs it, as it loads WordNet) by singular.
        levels = (self._tops, [q for top in self._tops for q in self._inner[top]])
        self._levels = [(_index(level, lambda p: {_key(p.name)}), level) for level in levels]
        self._plurals: dict[int, dict[str, list[Path]]] = {}
        self._files: dict[str, list[Path]] = {}

    def _base_forms(self, folder: Path) -> frozenset[str]:
        """The folder's name and its singular as WordNet's morphy gives it."""
        key = _key(folder.name)
        if key not in self._forms:
            forms = {key}
            try:
                from synset_builder.hierarchy.wordnet import load_wordnet

                wn = load_wordnet(
                    self.settings.nltk_data, self.settings.data_dir, self.settings.wordnet_dir
                )
                base = wn.morphy(key.replace(" ", "_"), "n")
            except ConfigError:
                base = None  # no WordNet here: names must match as they are
            if base:
                forms.add(_key(base))
            self._forms[key] = frozenset(forms)
        return self._forms[key]

    def folders(self, synset: SynsetRef) -> list[Path]:
        """The folders holding a synset's pictures: a top-level match, else split ones."""
        names = {_key(n) for n in (synset.wnid, *synset.lemmas, synset.name)}
        for level, (exact, folders) in enumerate(self._levels):
            found = _lookup(exact, names)
            if not found:
                if level not in self._plurals:
                    self._plurals[level] = _index(folders, self._base_forms)
                found = _lookup(self._plurals[level], names)
            if found:
                return found
        return []

    def unmatched(self, targets: Sequence[SynsetRef]) -> list[tuple[str, list[str]]]:
        """Folders no target takes, each with up to three nearest targets' names."""
        used = {p for ref in targets for p in self.folders(ref)}
        lost = []
        for top in self._tops:
            inner = self._inner[top]
            if top in used:
                continue
            if any(q in used for q in inner):
                lost += [q for q in inner if q not in used]
            else:
                lost.append(top)
        return [
            (
                printable(str(p.relative_to(self.root))),
                self._nearest(p, targets) if n < SUGGEST_AT_MOST else [],
            )
            for n, p in enumerate(lost)
        ]

    def _nearest(self, folder: Path, targets: Sequence[SynsetRef]) -> list[str]:
        forms = self._base_forms(folder)
        scored = []
        for ref in targets:
            score = max(
                SequenceMatcher(None, form, _key(name)).ratio()
                for form in forms
                for name in (*ref.lemmas, ref.name)
            )
            scored.append((-score, ref.wnid, f"{ref.name} ({ref.wnid})"))
        return [label for _, _, label in sorted(scored)[:3]]

    def search(self, synset: SynsetRef, query: str | None, page: int) -> SearchPage:
        if synset.wnid not in self._files:
            found = {
                p
                for folder in self.folders(synset)
                for p in folder.rglob("*")
                if p.is_file() and p.suffix.lower() in SUFFIXES
            }
            self._files[synset.wnid] = sorted(found)
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
