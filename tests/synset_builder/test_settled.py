"""``Candidate.settled`` follows the consensus rows, whoever writes them (migration 0014)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from synset_builder.consensus.live import DECIDED
from synset_builder.db.models import Candidate, Consensus, Requeue
from synset_builder.db.session import make_engine
from tests.conftest import DatabaseFactory
from tests.consensus_data import bare_candidates


def _settled(session: Session, cid: int) -> bool:
    return session.scalar(select(Candidate.settled).where(Candidate.id == cid))


def _verdict(cid: int, decision: str, initial: bool = False) -> dict[str, object]:
    return {"candidate_id": cid, "p_yes": 0.5, "decision": decision, "method": "dynamic",
            "n_votes": 1, "initial": initial}  # fmt: skip


def test_flag_follows_every_consensus_write(session: Session) -> None:
    """Inserted, upserted, changed both ways, made initial, deleted: through Core and
    the ORM alike, the flag says whether the row is initial or decided."""
    conn = session.connection()
    ids = bare_candidates(conn, len(DECIDED) + 3)[1]
    words, pending, initial, orm = ids[: len(DECIDED)], *ids[len(DECIDED) :]
    assert not any(_settled(session, c) for c in ids)  # a new candidate is open
    conn.execute(insert(Consensus), [_verdict(c, w) for c, w in zip(words, DECIDED, strict=True)])
    conn.execute(insert(Consensus), [_verdict(pending, "pending"), _verdict(initial, "pending",
                                                                           True)])  # fmt: skip
    assert all(_settled(session, c) for c in words), DECIDED
    assert not _settled(session, pending)
    assert _settled(session, initial)  # served in its own tier, not the bulk walk
    # Decided, reopened (a refit may send an item back to pending), decided again.
    for decision, expected in (("accepted", True), ("pending", False), ("rejected", True)):
        conn.execute(
            update(Consensus).where(Consensus.candidate_id == pending).values(decision=decision)
        )
        assert _settled(session, pending) is expected, decision
    # A change that keeps it decided leaves it settled; deleting the row opens it.
    conn.execute(update(Consensus).where(Consensus.candidate_id == pending).values(p_yes=0.9))
    assert _settled(session, pending)
    conn.execute(delete(Consensus).where(Consensus.candidate_id == pending))
    assert not _settled(session, pending)
    session.add(Consensus(**_verdict(orm, "undecided")))
    session.flush()
    assert _settled(session, orm)


def test_set_flag_does_not_wait_for_a_leasing_fetch(db_factory: DatabaseFactory) -> None:
    """A fetch holds the candidate row locked while it leases it: deciding the item
    must not wait for it (it could deadlock with the fetch's lease upsert). The flag
    is left false, and the serving query still sees the decision; the next write
    of the row sets it. Reopening waits (a stale true would hide an open item),
    unless the item is requeued."""
    engine = make_engine(db_factory.migrated("postgresql"))
    try:
        with engine.begin() as conn:
            cid = bare_candidates(conn, 1)[1][0]
        with engine.connect() as fetch, engine.connect() as submit:
            fetch.execute(text("SELECT 1 FROM candidate WHERE id = :c FOR NO KEY UPDATE"),
                          {"c": cid})  # fmt: skip
            submit.execute(text("SET LOCAL lock_timeout = '3s'"))
            submit.execute(insert(Consensus), _verdict(cid, "accepted"))  # no lock timeout
            submit.commit()
            fetch.rollback()
        with Session(engine) as s:
            assert not _settled(s, cid)
            s.execute(update(Consensus).values(decision="rejected"))
            s.commit()
            assert _settled(s, cid)
        with engine.connect() as fetch, engine.connect() as submit:
            fetch.execute(text("SELECT 1 FROM candidate WHERE id = :c FOR NO KEY UPDATE"),
                          {"c": cid})  # fmt: skip
            submit.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(Exception, match="lock timeout"):
                submit.execute(update(Consensus).values(decision="pending"))
        # A requeued item reopened by a submit (which holds its lease row) does not
        # wait either: the requeue tier serves it whatever the flag says.
        with engine.begin() as conn:
            conn.execute(insert(Requeue), {"candidate_id": cid, "reason": "trainer suspects it"})
        with engine.connect() as fetch, engine.connect() as submit:
            fetch.execute(text("SELECT 1 FROM candidate WHERE id = :c FOR NO KEY UPDATE"),
                          {"c": cid})  # fmt: skip
            submit.execute(text("SET LOCAL lock_timeout = '3s'"))
            submit.execute(update(Consensus).values(decision="pending"))  # no lock timeout
            submit.commit()
            fetch.rollback()
        with Session(engine) as s:
            assert _settled(s, cid)  # left as it was; cleared when nobody holds the row
            s.execute(update(Consensus).values(decision="accepted"))
            s.execute(update(Consensus).values(decision="pending"))
            s.commit()
            assert not _settled(s, cid)
    finally:
        engine.dispose()
