"""``synset status`` on a plain SQLite file reads without SQLAlchemy, and says the same.

The fast path (synset_builder/status_sqlite.py) is held against the ORM path on the
same database: the ORM path is forced by making the fast path decline the URL, so
both run through the CLI's whole edge (output, stderr, exit code). The import check
runs in a fresh interpreter, since this test process has long loaded SQLAlchemy.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from synset_builder import status_sqlite, tally, tally_sql
from synset_builder.db.models import Annotator, Candidate, Query, Synset, SynsetTallyDelta, Vote
from synset_builder.db.session import make_engine, session_scope
from tests.conftest import CliResult
from tests.synset_builder.test_status import seed_decisions


@pytest.fixture
def backend() -> str:
    """SQLite only: PostgreSQL always takes the ORM path."""
    return "sqlite"


def populate(database_url: str) -> None:
    """seed_decisions' synsets, plus queries (one inactive), votes and a third synset."""
    seed_decisions(database_url)
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        dog = s.scalars(select(Synset).where(Synset.wnid == "n02084071")).one()
        s.add(Synset(wnid="n02121808", name="domestic cat, house cat", lemmas=["cat"],
                     target=True, goal=250))  # fmt: skip
        s.add_all([Query(synset_id=dog.id, text="dog"), Query(synset_id=dog.id, text="puppy"),
                   Query(synset_id=dog.id, text="hound", active=False)])  # fmt: skip
        voters = [Annotator(username=f"v{k}") for k in range(3)]
        s.add_all(voters)
        s.flush()
        cands = s.scalars(select(Candidate).order_by(Candidate.id).limit(3)).all()
        s.add_all([Vote(candidate_id=c.id, annotator_id=a.id, answer=(c.id + a.id) % 2 == 0)
                   for c in cands for a in voters])  # fmt: skip
    engine.dispose()


def both_paths(
    cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch, db: Path, *args: str
) -> tuple[CliResult, CliResult]:
    """``synset ARGS`` by the fast path and by the ORM path, each on its own copy of
    ``db`` (a read may fold the ledger: each path must start from the same rows)."""
    results = []
    for fast in (True, False):
        copy = db.with_name(f"{db.stem}-{'fast' if fast else 'orm'}.db")
        if db.exists():
            shutil.copyfile(db, copy)
        monkeypatch.setenv("SYNSET_DATABASE_URL", f"sqlite:///{copy}")
        if not fast:
            monkeypatch.setattr(status_sqlite, "plain_file", lambda _url: None)
        results.append(cli(*args))
    monkeypatch.undo()
    return results[0], results[1]


def as_file(database_url: str) -> Path:
    file = status_sqlite.plain_file(database_url)
    assert file is not None
    return Path(file)


@pytest.mark.parametrize("args", [("status", "--json"), ("status",), ("status", "--all")])
def test_fast_path_prints_what_the_orm_path_prints(cli, settings, monkeypatch, args) -> None:
    populate(settings.database_url)
    fast, orm = both_paths(cli, monkeypatch, as_file(settings.database_url), *args)
    assert (fast.code, fast.out, fast.err) == (orm.code, orm.out, orm.err)
    assert fast.code == 0
    if "--json" in args:
        rows = {r["wnid"]: r for r in json.loads(fast.out)}
        assert set(rows) == {"n02084071", "n00015388", "n02121808"}
        dog = rows["n02084071"]["counts"]
        assert (dog["queries"], dog["votes"], dog["pending"]) == (2, 9, 4)
        assert rows["n02121808"]["goal"] == 250


def test_a_long_ledger_is_folded_by_either_path_to_the_same_numbers(
    cli, settings, monkeypatch
) -> None:
    populate(settings.database_url)
    db = as_file(settings.database_url)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM synset_tally_delta").fetchone()[0] > 1
    for module in (tally, tally_sql):
        monkeypatch.setattr(module, "FOLD_AT", 1)
    fast = cli("status", "--json")
    assert fast.code == 0, fast.err
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(SynsetTallyDelta)) == 0
        from synset_builder import status

        assert json.loads(fast.out) == [r.as_json() for r in status.funnel(s, exact=True)]
    engine.dispose()


def _empty_version_table(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")


def _before_the_counters(db: Path) -> None:
    """A revision recorded but no tally tables: a database older than migration 0017."""
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0016')")


def _a_folder(db: Path) -> None:
    db.with_name(f"{db.stem}-fast.db").mkdir()
    db.with_name(f"{db.stem}-orm.db").mkdir()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (None, "no schema yet; run 'synset init' first"),
        (_empty_version_table, "no schema yet"),
        (_before_the_counters, "database error: no such table"),
        (_a_folder, "Cannot reach the database"),
    ],
    ids=["missing", "no-revision", "before-0017", "a-folder"],
)
def test_an_unready_database_gets_the_orm_paths_line_and_exit_code(
    cli, monkeypatch, tmp_path, make, words
) -> None:
    db = tmp_path / "sub" / "project.db"
    db.parent.mkdir()
    if make is not None:
        make(db)
    fast, orm = both_paths(cli, monkeypatch, db, "status", "--json")
    assert fast.out == orm.out == ""
    assert fast.code == orm.code == 3
    assert fast.err.replace("-fast.db", "-orm.db") == orm.err
    assert len(fast.err.strip().splitlines()) == 1 and words in fast.err


LOADED = """
import json, sys
from synset_builder.cli import main
codes = [main(["status", "--json"]), main(["status"])]
print(json.dumps([codes, sorted({name.split(".")[0] for name in sys.modules})]))
"""


def test_status_on_sqlite_loads_no_sqlalchemy(settings, tmp_path) -> None:
    populate(settings.database_url)
    done = subprocess.run(
        [sys.executable, "-c", LOADED],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"SYNSET_DATABASE_URL": settings.database_url, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    codes, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert codes == [0, 0]
    assert "n02084071" in done.stdout
    assert "sqlalchemy" not in loaded
