"""The CLI contract every stage relies on: one-line errors, status JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from synset_builder.db.models import Candidate, Image, Query, Synset
from synset_builder.db.session import make_engine, session_scope

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNSET, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=60
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0]


def test_init_against_unreachable_postgres_is_one_line(tmp_path) -> None:
    done = run(
        "init",
        SYNSET_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:9/nowhere",
        SYNSET_DATA_DIR=str(tmp_path),
    )
    assert_one_line_error(done, "Cannot reach the database", "127.0.0.1:9")


def test_bad_database_url_is_one_line(tmp_path) -> None:
    done = run("status", SYNSET_DATABASE_URL="mysql://x/y", SYNSET_DATA_DIR=str(tmp_path))
    assert_one_line_error(done, "SYNSET_DATABASE_URL")


def test_unwritable_data_dir_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = run(
        "init",
        SYNSET_DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
        SYNSET_DATA_DIR=str(blocker / "data"),
    )
    assert_one_line_error(done, "data folder")


def test_status_before_init_says_what_to_do(tmp_path) -> None:
    done = run("status", SYNSET_DATABASE_URL=f"sqlite:///{tmp_path}/new.db")
    assert_one_line_error(done, "synset init")


def test_status_json_lists_every_synset_with_counts(cli, settings) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        dog = Synset(wnid="n02084071", name="dog", lemmas=["dog"], target=True)
        animal = Synset(wnid="n00015388", name="animal", lemmas=["animal"], target=False)
        s.add_all([dog, animal])
        s.flush()
        s.add_all(
            [Query(synset_id=dog.id, text="dog"), Query(synset_id=dog.id, text="domestic dog")]
        )
        img = Image(sha256="a" * 64, path="x", width=1, height=1, format="JPEG", bytes=1)
        s.add(img)
        s.flush()
        s.add(Candidate(image_id=img.id, synset_id=dog.id, source="urls"))
    engine.dispose()

    result = cli("status", "--json")
    assert result.code == 0, result.err
    rows = {r["wnid"]: r for r in json.loads(result.out)}
    assert set(rows) == {"n02084071", "n00015388"}
    dog = rows["n02084071"]
    assert dog["name"] == "dog" and dog["target"] is True
    assert dog["counts"]["queries"] == 2
    assert dog["counts"]["candidates"] == 1
    for key in ("votes", "accepted", "rejected_by_vote", "undecided"):
        assert dog["counts"][key] == 0
    assert rows["n00015388"]["target"] is False

    table = cli("status")
    assert "n02084071" in table.out and "n00015388" not in table.out


def test_settings_come_from_synset_toml(tmp_path, monkeypatch) -> None:
    from synset_builder.config import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNSET_DATABASE_URL", raising=False)
    (tmp_path / "synset.toml").write_text('database_url = "sqlite:///./from-toml.db"\n')
    assert load_settings().database_url == "sqlite:///./from-toml.db"
    monkeypatch.setenv("SYNSET_DATABASE_URL", "sqlite:///./from-env.db")
    assert load_settings().database_url == "sqlite:///./from-env.db"
