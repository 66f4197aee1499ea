"""WordNet 3.0 through NLTK, with or without NLTK's downloaded corpus.

NLTK normally reads WordNet from ``nltk_data/corpora/wordnet``. On a machine with
no internet that corpus cannot be downloaded (and nothing may be downloaded at run
time anyway), but Debian's ``wordnet-base`` and ``wordnet-sense-index`` packages
ship the same WordNet 3.0 database files. NLTK's reader needs one more file,
``lexnames`` (the 45 lexicographer file names), which Debian lacks; we write it
and copy the rest into an NLTK-shaped folder under the data dir.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nltk.corpus.reader.wordnet import WordNetCorpusReader

from synset_builder.errors import ConfigError

DEBIAN_WORDNET = Path("/usr/share/wordnet")

# The lexicographer files of WordNet 3.0, in number order (wnintro(5), lexnames(5)).
LEXNAMES = (  # noqa: SIM905 - one string reads better than 45 quoted items
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food "
    "noun.group noun.location noun.motive noun.object noun.person noun.phenomenon "
    "noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative "
    "verb.weather adj.ppl"
).split()
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

# Files NLTK's reader opens; all but lexnames come from Debian.
_DEBIAN_FILES = (
    "cntlist.rev", "index.sense", "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb", "adj.exc", "adv.exc", "noun.exc",
    "verb.exc",
)  # fmt: skip


@dataclass(frozen=True)
class WordNetSource:
    """Where WordNet was found: ``nltk`` (a downloaded corpus) or ``debian``."""

    kind: str
    root: Path


def lexnames_text() -> str:
    lines = []
    for i, name in enumerate(LEXNAMES):
        lines.append(f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n")
    return "".join(lines)


def nltk_search_paths(extra: Path | None) -> list[Path]:
    """NLTK's own search path, with the configured folder first."""
    import nltk.data

    paths = [Path(p) for p in nltk.data.path]
    return ([extra] if extra else []) + paths


def find_nltk_corpus(search_paths: list[Path]) -> Path | None:
    for base in search_paths:
        root = base / "corpora" / "wordnet"
        if (root / "lexnames").is_file() and (root / "data.noun").is_file():
            return root
    return None


def build_from_debian(debian_dir: Path, target: Path) -> Path:
    """Lay out an NLTK wordnet folder at ``target`` from Debian's files (idempotent)."""
    missing = [f for f in _DEBIAN_FILES if not (debian_dir / f).is_file()]
    if missing:
        raise ConfigError(
            f"WordNet files are missing from {debian_dir} ({', '.join(missing[:3])}...); "
            "install them with 'apt-get install wordnet-base wordnet-sense-index'."
        )
    root = target / "corpora" / "wordnet"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in _DEBIAN_FILES:
            link = root / name
            if (
                link.is_symlink()
                or not link.exists()
                or link.stat().st_size != (debian_dir / name).stat().st_size
            ):
                _copy(debian_dir / name, link)
        lexnames = root / "lexnames"
        if not lexnames.is_file() or lexnames.read_text() != lexnames_text():
            tmp = root / f".lexnames.tmp{os.getpid()}"
            tmp.write_text(lexnames_text())
            tmp.replace(lexnames)
    except OSError as exc:
        raise ConfigError(f"Cannot write the WordNet folder {root}: {exc.strerror}.") from exc
    return root


def _copy(src: Path, dest: Path) -> None:
    """Copy atomically (temp name, then rename).

    NLTK's path sandbox refuses symlinks that leave its data folders and files
    with several hard links, so a plain copy (about 36 MB, once) is the only way.
    """
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)


def locate_wordnet(
    nltk_data: Path | None, data_dir: Path, debian_dir: Path = DEBIAN_WORDNET
) -> WordNetSource:
    """NLTK's corpus if present, else one built from Debian's packages, else a clear error."""
    found = find_nltk_corpus(nltk_search_paths(nltk_data))
    if found is not None:
        return WordNetSource("nltk", found)
    if (debian_dir / "data.noun").is_file():
        return WordNetSource("debian", build_from_debian(debian_dir, data_dir / "nltk_data"))
    raise ConfigError(
        "WordNet is not installed: run 'apt-get install wordnet-base wordnet-sense-index' "
        "(works offline from a Debian mirror) or 'python -m nltk.downloader wordnet'."
    )


def open_wordnet(source: WordNetSource) -> WordNetCorpusReader:
    import nltk.data

    # NLTK only reads corpora below the folders on its search path.
    data_root = str(source.root.parent.parent)
    if data_root not in nltk.data.path:
        nltk.data.path.append(data_root)
    with warnings.catch_warnings():
        # No Open Multilingual WordNet here; English is all we need.
        warnings.simplefilter("ignore")
        return WordNetCorpusReader(str(source.root), None)


@lru_cache(maxsize=4)
def _cached_reader(root: Path) -> WordNetCorpusReader:
    # WordNet is immutable and its indexes take seconds to load: one reader per process.
    return open_wordnet(WordNetSource("cached", root))


def load_wordnet(
    nltk_data: Path | None, data_dir: Path, debian_dir: Path = DEBIAN_WORDNET
) -> WordNetCorpusReader:
    """The reader for the configured WordNet, loaded once per process."""
    return _cached_reader(locate_wordnet(nltk_data, data_dir, debian_dir).root)
