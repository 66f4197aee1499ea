"""WordNet is found with NLTK's corpus, or built from Debian's packages offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nltk.data
import pytest

from synset_builder.errors import ConfigError
from synset_builder.hierarchy.wordnet import (
    DEBIAN_WORDNET,
    LEXNAMES,
    build_from_debian,
    locate_wordnet,
    open_wordnet,
)


@pytest.fixture
def no_system_nltk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nltk.data, "path", [])


def test_debian_path_builds_an_nltk_folder_with_lexnames(tmp_path, no_system_nltk) -> None:
    source = locate_wordnet(tmp_path / "empty-nltk", tmp_path / "data", DEBIAN_WORDNET)
    assert source.kind == "debian"
    assert source.root == tmp_path / "data" / "nltk_data" / "corpora" / "wordnet"
    lexnames = (source.root / "lexnames").read_text().splitlines()
    assert len(lexnames) == len(LEXNAMES) == 45
    assert lexnames[3] == "03\tnoun.Tops\t1"
    wn = open_wordnet(source)
    dog = wn.synset_from_pos_and_offset("n", 2084071)
    assert dog.name() == "dog.n.01"
    # A second call reuses the folder instead of copying again.
    assert locate_wordnet(None, tmp_path / "data", DEBIAN_WORDNET).root == source.root


def test_nltk_corpus_is_used_when_present(tmp_path, no_system_nltk) -> None:
    build_from_debian(DEBIAN_WORDNET, tmp_path / "nltk")  # stands in for a downloaded corpus
    source = locate_wordnet(tmp_path / "nltk", tmp_path / "data", tmp_path / "no-debian")
    assert source.kind == "nltk"
    assert not (tmp_path / "data").exists()
    assert open_wordnet(source).synset("whippet.n.01").offset() == 2091134


def test_neither_source_says_how_to_get_one(tmp_path, no_system_nltk) -> None:
    with pytest.raises(ConfigError, match="apt-get install wordnet-base wordnet-sense-index"):
        locate_wordnet(tmp_path / "empty", tmp_path / "data", tmp_path / "no-debian")


def test_incomplete_debian_install_is_named(tmp_path) -> None:
    partial = tmp_path / "wordnet"
    partial.mkdir()
    shutil.copy(DEBIAN_WORDNET / "data.noun", partial / "data.noun")
    with pytest.raises(ConfigError, match="missing"):
        build_from_debian(partial, tmp_path / "out")


def test_cli_works_with_networking_off(tmp_path) -> None:
    """The Debian path in a network namespace with no interfaces up."""
    synset = os.path.join(os.path.dirname(sys.executable), "synset")
    env = {
        **os.environ,
        "SYNSET_DATABASE_URL": f"sqlite:///{tmp_path}/s.db",
        "SYNSET_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("SYNSET_NLTK_DATA", None)
    for args in (["init"], ["hierarchy", "add", "n02091134"]):
        done = subprocess.run(
            ["unshare", "-n", synset, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    assert "Added 1 target synsets" in done.stdout
    assert (tmp_path / "data" / "nltk_data" / "corpora" / "wordnet" / "lexnames").is_file()
