"""Lists and rows as single parameters (synset_builder/db/bulk.py), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.orm import Session

from synset_builder.db.bulk import in_list, insert_rows, not_in_list, rows_params
from synset_builder.db.models import Candidate, Consensus
from synset_builder.db.session import on_postgresql
from tests.consensus_data import make_synset

COLUMNS = ("candidate_id", "p_yes", "decision", "method", "n_votes", "initial", "updated_at")


def test_rows_arrive_exactly_as_python_holds_them(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    cands = make_synset(session, "n01", photos, tmp_path, 3)
    postgresql = on_postgresql(session)
    moment = datetime(2026, 12, 1, 3, 4, 5, 123456, tzinfo=UTC)
    rows = [
        {"candidate_id": cands[0].id, "p_yes": 0.1 + 0.2, "decision": "pending",
         "method": "it's \"quoted\" \\ é", "n_votes": 2**31 - 1, "initial": True,
         "updated_at": moment},
        {"candidate_id": cands[1].id, "p_yes": 1e-300, "decision": "pending", "method": "m",
         "n_votes": 0, "initial": False, "updated_at": moment},
    ]  # fmt: skip
    if postgresql:  # numpy scalars, as a model hands them back (SQLite's driver keeps bytes)
        rows.append(
            {"candidate_id": cands[2].id, "p_yes": np.float64(0.75), "decision": "accepted",
             "method": "m", "n_votes": np.int64(3), "initial": np.bool_(False),
             "updated_at": moment}
        )  # fmt: skip
    session.connection().execute(
        insert_rows(Consensus.__table__, COLUMNS, postgresql),
        rows_params(rows, COLUMNS, postgresql),
    )
    got = session.execute(
        select(*(Consensus.__table__.c[c] for c in COLUMNS)).order_by(Consensus.candidate_id)
    ).all()
    for row, want in zip(got, rows, strict=True):
        back = dict(zip(COLUMNS, row, strict=True))
        back["updated_at"] = back["updated_at"].replace(tzinfo=UTC)  # SQLite keeps no zone
        assert back == want


def test_id_lists_select_the_same_rows_on_both_backends(
    session: Session, photos: list[Path], tmp_path: Path
) -> None:
    ids = [c.id for c in make_synset(session, "n02", photos, tmp_path, 4)]
    postgresql = on_postgresql(session)
    inside = select(Candidate.id).where(in_list(Candidate.id, "ids", postgresql))
    outside = select(Candidate.id).where(
        Candidate.id.in_(ids), not_in_list(Candidate.id, "ids", postgresql)
    )
    for chosen in ([], [ids[0]], ids[1:3], [*ids, 10**9]):
        assert set(session.scalars(inside, {"ids": chosen})) == set(chosen) & set(ids)
        assert set(session.scalars(outside, {"ids": chosen})) == set(ids) - set(chosen)


def test_postgresql_text_does_not_depend_on_the_list() -> None:
    """The list is one parameter, not expanded into the text at execution: psycopg and
    PostgreSQL prepare the statement once for every list length."""
    stmt = select(Candidate.id).where(in_list(Candidate.id, "ids", True))
    compiled = stmt.compile(dialect=pg_dialect.psycopg.dialect())
    assert "POSTCOMPILE" not in str(compiled)
    assert list(compiled.binds) == ["ids"]
