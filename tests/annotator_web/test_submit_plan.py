"""A vote submit reads its page of items by key, however many items are decided."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql as pg_dialect

from annotator_web import serving_sql as sql
from synset_builder.db.models import Annotator, Candidate, Consensus, Image, Synset
from synset_builder.db.session import make_engine
from tests.conftest import DatabaseFactory

DECIDED = 20000


def test_answer_state_does_not_scan_every_decided_item(db_factory: DatabaseFactory) -> None:
    """The statistics say "nothing decided" (analyzed before a burst of decisions, as
    autovacuum lags): the old ``NOT EXISTS`` test was then planned as a hashed scan of
    every decided row, 20,000 rows read here for a page of 24 items."""
    engine = make_engine(db_factory.migrated("postgresql"))
    try:
        with engine.begin() as conn:
            sid = conn.execute(
                insert(Synset).returning(Synset.id),
                {"wnid": "n00000001", "name": "x", "lemmas": ["x"], "origin": "custom"},
            ).scalar_one()
            me = conn.execute(
                insert(Annotator).returning(Annotator.id), {"username": "ann", "role": "annotator"}
            ).scalar_one()
            images = conn.execute(
                insert(Image).returning(Image.id),
                [{"sha256": uuid.uuid4().hex * 2, "path": "p", "width": 1, "height": 1,
                  "format": "JPEG", "bytes": 1} for _ in range(DECIDED + 24)],
            ).scalars().all()  # fmt: skip
            ids = conn.execute(
                insert(Candidate).returning(Candidate.id),
                [{"image_id": i, "synset_id": sid, "source": "t", "rank": k}
                 for k, i in enumerate(images)],
            ).scalars().all()  # fmt: skip
        verdicts = [{"candidate_id": c, "p_yes": 0.5, "decision": "pending", "method": "dynamic",
                     "n_votes": 1} for c in sorted(ids)[:DECIDED]]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(insert(Consensus), verdicts)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # nothing is decided yet
            conn.execute(text("UPDATE consensus SET decision = 'accepted'"))
        stmt = str(sql.answer_state(True).compile(dialect=pg_dialect.psycopg.dialect()))
        names: list[str] = []

        def positional(m: re.Match[str]) -> str:
            if m.group(1) not in names:
                names.append(m.group(1))
            return f"${names.index(m.group(1)) + 1}"

        prepared = re.sub(r"%\((\w+)\)s", positional, stmt)
        page = "{" + ",".join(map(str, sorted(ids)[-24:])) + "}"
        args = {"ids": page, "me": str(me)}
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            with raw.cursor() as cur:
                cur.execute("SET plan_cache_mode = force_generic_plan")
                cur.execute(f"PREPARE answer_state AS {prepared}")
                values = ", ".join(f"'{args[n]}'" for n in names)
                cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE answer_state({values})")
                plan = "\n".join(row[0] for row in cur.fetchall())
            raw.rollback()
        # Every node reads a few rows per loop: the page's 24 items, each table by key.
        read = [int(n) for n in re.findall(r"actual time=\S+ rows=(\d+)", plan)]
        assert read and max(read) <= 24, plan
    finally:
        engine.dispose()
