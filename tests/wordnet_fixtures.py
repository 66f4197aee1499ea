"""WordNet for tests: one NLTK-shaped folder built from Debian's files per run."""

from __future__ import annotations

from pathlib import Path

import pytest
from nltk.corpus.reader.wordnet import WordNetCorpusReader

from synset_builder.hierarchy.wordnet import DEBIAN_WORDNET, build_from_debian


@pytest.fixture(scope="session")
def nltk_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("nltk_data")
    build_from_debian(DEBIAN_WORDNET, target)
    return target


@pytest.fixture(scope="session")
def wn(nltk_data_dir: Path) -> WordNetCorpusReader:
    from synset_builder.hierarchy.wordnet import load_wordnet

    return load_wordnet(nltk_data_dir, nltk_data_dir)


@pytest.fixture
def wordnet_env(nltk_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at the shared folder, so it loads WordNet once per run."""
    monkeypatch.setenv("SYNSET_NLTK_DATA", str(nltk_data_dir))
    return nltk_data_dir
