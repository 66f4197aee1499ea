"""Shared fixtures: real SQLite and PostgreSQL databases, the CLI, the test data.

Each test session creates its own PostgreSQL databases (unique names) and drops
them at the end. Two ways to get a database:

* ``session``: one migrated database per backend for the whole run; each test runs
  inside a transaction that is rolled back (SQLAlchemy's "join into an external
  transaction" recipe with ``join_transaction_mode="create_savepoint"``).
* ``db_url``: a fresh migrated database per test (a copy of a template), for code
  that opens its own connections and commits: the CLI, the web app, subprocesses.

Both are parametrised over ``sqlite`` and ``postgresql``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.db import migrate
from synset_builder.db.session import make_engine

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
PHOTOS = SHARED / "testdata" / "photos"
CROWD = SHARED / "testdata" / "crowd"
PG_ADMIN_URL = os.environ.get(
    "SYNSET_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


@dataclass
class DatabaseFactory:
    """Creates migrated databases quickly by copying a per-backend template."""

    workdir: Path
    prefix: str = field(default_factory=lambda: f"synset_test_{uuid.uuid4().hex[:8]}")
    _templates: dict[str, str] = field(default_factory=dict)
    _pg_names: list[str] = field(default_factory=list)
    _admin: Engine | None = None

    @property
    def admin(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        return self._admin

    def _pg_url(self, name: str) -> str:
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def empty(self, backend: str) -> str:
        """A new database with no schema at all."""
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        if backend == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.db')}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self._pg_names.append(name)
        return self._pg_url(name)

    def migrated(self, backend: str) -> str:
        """A new database at the head revision."""
        if backend not in self._templates:
            url = self.empty(backend)
            migrate.upgrade(url)
            self._templates[backend] = url
        template = self._templates[backend]
        if backend == "sqlite":
            target = self.workdir / f"{self.prefix}_{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(make_url(template).database, target)
            return f"sqlite:///{target}"
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"'))
        self._pg_names.append(name)
        return self._pg_url(name)

    def close(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            for name in self._pg_names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def db_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(workdir=tmp_path_factory.mktemp("databases"))
    yield factory
    factory.close()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def shared_engine(db_factory: DatabaseFactory, backend: str) -> Iterator[Engine]:
    engine = make_engine(db_factory.migrated(backend))
    yield engine
    engine.dispose()


@pytest.fixture
def session(shared_engine: Engine) -> Iterator[Session]:
    """A session whose work, commits included, is rolled back after the test."""
    with shared_engine.connect() as conn:
        outer = conn.begin()
        sess = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield sess
        finally:
            sess.close()
            outer.rollback()


@pytest.fixture
def db_url(db_factory: DatabaseFactory, backend: str) -> str:
    """A fresh migrated database of the current backend, for code that commits."""
    return db_factory.migrated(backend)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "data")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., CliResult]:
    """Run ``synset ARGS`` in-process against the test's database and data folder."""
    from synset_builder.cli import main

    monkeypatch.setenv("SYNSET_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SYNSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.chdir(tmp_path)

    def run(*args: str, input: str | None = None) -> CliResult:
        if input is not None:
            import io

            monkeypatch.setattr("sys.stdin", io.StringIO(input))
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """The 143 real photographs of ../shared/testdata/photos, sorted."""
    files = sorted(PHOTOS.glob("*.JPEG"))
    assert files, f"test photos missing at {PHOTOS}"
    return files


from tests.wordnet_fixtures import nltk_data_dir, wn, wordnet_env  # noqa: E402, F401


@pytest.fixture(scope="module")
def two_threads() -> Iterator[None]:
    """torch on two threads for a module (this machine's cores; more only contend).
    A module asks for it with ``pytestmark = pytest.mark.usefixtures("two_threads")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
