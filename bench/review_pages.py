"""Review grid pages at 100,000 candidates in one synset: keyset pages against OFFSET.

The review grid (synset_builder/review/browse.py) cuts pages by key: ``candidate.id
> after ORDER BY id LIMIT 24``. The comparison is the same statement cut by
OFFSET, the usual way, at the same depths. Seeds a fresh PostgreSQL database
(the real schema; triggers off for the load), 80% accepted, 10% rejected, 10%
pending, one item in 5,000 undecided, and a curator's judgement on one in 97;
prints milliseconds per page (mean of 5) for both, and their ratio::

    nice .venv/bin/python bench/review_pages.py [--candidates 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synset_builder.db import migrate  # noqa: E402
from synset_builder.db.models import Annotator, Consensus, ExpertDecision  # noqa: E402
from synset_builder.review import browse  # noqa: E402
from tests.consensus_data import bare_candidates  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def seed(url: str, n: int) -> tuple[int, list[int]]:
    engine = create_engine(url)
    with Session(engine) as s:
        conn = s.connection()
        for table in ("consensus", "candidate", "image", "expert_decision"):
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        sid, ids = bare_candidates(conn, n)
        words = ["accepted"] * 8 + ["rejected", "pending"]
        rows = [{"candidate_id": c, "p_yes": 0.9, "method": "bench", "n_votes": 3,
                 "decision": "undecided" if k % 5000 == 0 else words[k % 10]}
                for k, c in enumerate(ids)]  # fmt: skip
        conn.execute(insert(Consensus), rows)
        curator = Annotator(username="bench-curator", role="curator")
        s.add(curator)
        s.flush()
        judged = [{"candidate_id": c, "label": False, "annotator_id": curator.id}
                  for c in ids[::97]]  # fmt: skip
        conn.execute(insert(ExpertDecision), judged)
        s.commit()
        s.execute(text("ANALYZE"))
        s.commit()
    engine.dispose()
    return sid, ids


def timed(session: Session, stmt: object, repeat: int = 5) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        session.execute(stmt).all()
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    args = parser.parse_args()
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = f"bench_review_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        migrate.upgrade(url)
        sid, ids = seed(url, args.candidates)
        engine = create_engine(url)
        with Session(engine) as s:
            for decision in ("accepted", "undecided"):
                for depth in (0, 0.5, 0.99):
                    k = int(len(ids) * depth)
                    after = ids[k - 1] if k else 0
                    keyset = timed(s, browse._page_stmt(sid, decision, browse.PAGE, after, False))
                    # OFFSET: the rows of this decision before the same point, skipped.
                    skip = sum(1 for t in s.execute(browse._page_stmt(sid, decision, len(ids), 0,
                               False)).all() if t[0] <= after)  # fmt: skip
                    offset_stmt = browse._page_stmt(sid, decision, browse.PAGE, 0, False)
                    offset = timed(s, offset_stmt.offset(skip))
                    print(
                        f"{decision:9s} at {depth:4.0%} (skip {skip:6d}): keyset {keyset:6.1f} ms"
                        f"  offset {offset:6.1f} ms  ratio {offset / keyset:5.1f}x"
                    )
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
