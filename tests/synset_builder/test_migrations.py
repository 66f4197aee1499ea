"""The schema: migrations run both ways on both backends and match the models."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from synset_builder.db import migrate
from synset_builder.db.models import Base, Synset
from synset_builder.db.session import make_engine
from tests.conftest import ROOT, DatabaseFactory

TABLES = {
    "synset", "synset_edge", "query", "image", "candidate", "annotator", "vote", "gold",
    "consensus", "export",
}  # fmt: skip


def test_upgrade_then_downgrade(db_factory: DatabaseFactory, backend: str) -> None:
    url = db_factory.empty(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(url)  # and back up again: nothing left behind by the downgrade
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_models_and_migrations_agree(shared_engine) -> None:
    with shared_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_single_head() -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"


def test_alembic_in_project_root_uses_synset_database_url(
    db_factory: DatabaseFactory, backend: str
) -> None:
    url = db_factory.empty(backend)
    env = {**os.environ, "SYNSET_DATABASE_URL": url}
    alembic = [sys.executable, "-m", "alembic"]
    subprocess.run([*alembic, "upgrade", "head"], cwd=ROOT, env=env, check=True)
    engine = make_engine(url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    subprocess.run([*alembic, "downgrade", "base"], cwd=ROOT, env=env, check=True)
    assert migrate.current_revision(engine) is None
    engine.dispose()


def test_synset_init_from_any_directory(db_factory: DatabaseFactory, backend: str, tmp_path):
    url = db_factory.empty(backend)
    env = {**os.environ, "SYNSET_DATABASE_URL": url, "SYNSET_DATA_DIR": str(tmp_path / "d")}
    synset = os.path.join(os.path.dirname(sys.executable), "synset")
    done = subprocess.run([synset, "init"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "upgraded from empty" in done.stdout
    engine = make_engine(url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()
    again = subprocess.run([synset, "init"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "up to date" in again.stdout
    assert (tmp_path / "d").is_dir()


def test_initial_ids_backfilled_from_consensus(db_factory: DatabaseFactory, backend: str) -> None:
    """0011 copies each synset's existing initial subset onto its row."""
    url = db_factory.empty(backend)
    migrate.upgrade(url, "0010_serve_index")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO synset (id, wnid, name, lemmas, gloss, origin, target, goal,"
                " imageable, created_at) VALUES (1, 'n1', 'a', '[]', '', 'custom', true, 10,"
                " true, CURRENT_TIMESTAMP), (2, 'n2', 'b', '[]', '', 'custom', true, 10, true,"
                " CURRENT_TIMESTAMP)"
            )
        )
        for k in range(1, 7):
            conn.execute(
                text(
                    "INSERT INTO image (id, sha256, path, width, height, format, bytes,"
                    " created_at) VALUES (:k, :sha, 'x', 1, 1, 'JPEG', 1, CURRENT_TIMESTAMP)"
                ),
                {"k": k, "sha": f"{k:064d}"},
            )
            conn.execute(
                text(
                    "INSERT INTO candidate (id, image_id, synset_id, source, rank, fetched_at)"
                    " VALUES (:k, :k, :s, 'test', :k, CURRENT_TIMESTAMP)"
                ),
                {"k": k, "s": 1 if k <= 4 else 2},
            )
        for k, initial in ((3, True), (1, True), (2, False), (5, False)):
            conn.execute(
                text(
                    "INSERT INTO consensus (candidate_id, p_yes, decision, method, n_votes,"
                    " initial, updated_at) VALUES (:k, 0.5, 'pending', 'dynamic', 0, :i,"
                    " CURRENT_TIMESTAMP)"
                ),
                {"k": k, "i": initial},
            )
    migrate.upgrade(url)
    with engine.connect() as conn:
        rows = dict(conn.execute(select(Synset.id, Synset.initial_ids)).all())
    assert rows == {1: [1, 3], 2: None}
    engine.dispose()
