"""Takedown and report clauses cost nothing when their tables are empty and stay
index-driven when not (PostgreSQL plans of a whole synset's clean count)."""

from __future__ import annotations

import json

from sqlalchemy import Engine, insert, text, update
from sqlalchemy.dialects import postgresql as pg_dialect

from synset_builder.db.models import Annotator, Image, Report, Takedown
from synset_builder.db.session import make_engine
from synset_builder.status import _cleaned
from tests.conftest import DatabaseFactory
from tests.consensus_data import bare_candidates

N = 5000


def nodes(plan: dict) -> list[dict]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += nodes(child)
    return out


def side_reads(engine: Engine) -> tuple[int, list[dict]]:
    """Rows the takedown and report checks examined for the clean count of every candidate
    (custom plan), and their scan nodes on those tables and the candidates they probe."""
    stmt = _cleaned(True).compile(
        dialect=pg_dialect.dialect(), compile_kwargs={"literal_binds": True}
    )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        plan = conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {stmt}")).scalar_one()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    checks = [
        n for n in nodes(plan[0]["Plan"])
        if n.get("Relation Name") in ("takedown", "report")
        or (n.get("Relation Name") == "candidate" and n.get("Alias") != "candidate")
    ]  # fmt: skip
    examined = sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"] for n in checks
    )
    return examined, checks


def test_empty_takedown_and_report_tables_cost_nothing_and_full_ones_use_indexes(
    db_factory: DatabaseFactory,
) -> None:
    engine = make_engine(db_factory.migrated("postgresql"))
    try:
        with engine.begin() as conn:
            _, ids = bare_candidates(conn, N)
            conn.execute(update(Image).values(quality="ok"))
            conn.execute(
                text(
                    "UPDATE candidate SET url = CAST(id AS text), creator = CAST(id % 500 AS text)"
                )
            )
        # The old correlated EXISTS probed the candidates of each of the 5,000 images.
        read, _ = side_reads(engine)
        assert read <= 10, read
        with engine.begin() as conn:
            who = conn.execute(
                insert(Annotator).returning(Annotator.id), {"username": "a"}
            ).scalar()
            conn.execute(insert(Takedown), [{"kind": "creator", "value": str(k), "reason": "r"}
                                            for k in range(5)])  # fmt: skip
            conn.execute(insert(Takedown), [{"kind": "url", "value": str(i), "reason": "r"}
                                            for i in ids[:20]])  # fmt: skip
            image = conn.scalar(
                text("SELECT image_id FROM candidate WHERE id = :i"), {"i": ids[-1]}
            )
            conn.execute(insert(Report).values(image_id=image, annotator_id=who, reason="private"))
        # 5 creators x 10 candidates + 20 URLs + 1 report: what the indexes find, not 5,000.
        read, checks = side_reads(engine)
        assert read <= 4 * (50 + 20 + 1) + 40, read
        probes = [n for n in checks if n.get("Relation Name") == "candidate"]
        assert probes and all(n["Node Type"] != "Seq Scan" for n in probes), probes
    finally:
        engine.dispose()
