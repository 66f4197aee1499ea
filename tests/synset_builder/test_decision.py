"""``Decision`` members reach the database as the plain word, on both back-ends.

SQLAlchemy hands a member to the driver as it is, and psycopg 3 dumps a plain
``Enum`` by its name: a member whose name differed from its word could be stored
as that name on PostgreSQL only, and every SQL text that compares with the word
(triggers, the serving statements) would stop matching there.
"""

from __future__ import annotations

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from synset_builder.db.models import Consensus
from synset_builder.decision import DECIDED, Decision, of_answer
from tests.consensus_data import bare_candidates


def _row(cid: int, decision: Decision) -> dict[str, object]:
    return {"candidate_id": cid, "p_yes": 0.5, "decision": decision, "method": "dynamic",
            "n_votes": 1}  # fmt: skip


def _stored(session: Session, cid: int) -> object:
    """The column as the database holds it, read through SQL text (no ORM typing)."""
    return session.execute(
        text("SELECT decision FROM consensus WHERE candidate_id = :c"), {"c": cid}
    ).scalar_one()


def test_members_are_their_words() -> None:
    assert [d.name for d in Decision] == [d.value for d in Decision]
    assert Decision.accepted == "accepted" and f"{Decision.pending}" == "pending"
    assert set(DECIDED) == set(Decision) - {Decision.pending}
    assert (of_answer(True), of_answer(False)) == (Decision.accepted, Decision.rejected)


def test_every_write_path_stores_the_plain_word(session: Session) -> None:
    """ORM, Core executemany, Core update and a bound text parameter all store the
    word, and SQL text comparing with the literal word finds the rows."""
    conn = session.connection()
    orm, core_a, core_b, updated, raw = bare_candidates(conn, 5)[1]
    session.add(Consensus(**_row(orm, Decision.undecided)))
    session.flush()
    conn.execute(
        insert(Consensus), [_row(core_a, Decision.accepted), _row(core_b, Decision.pending)]
    )
    conn.execute(insert(Consensus), _row(updated, Decision.pending))
    conn.execute(
        update(Consensus)
        .where(Consensus.candidate_id == updated)
        .values(decision=Decision.rejected)
    )
    conn.execute(
        text(
            "INSERT INTO consensus (candidate_id, p_yes, decision, method, n_votes, initial,"
            " updated_at) VALUES (:c, 0.5, :d, 'dynamic', 0, false, CURRENT_TIMESTAMP)"
        ),
        {"c": raw, "d": Decision.accepted},
    )
    expected = {orm: "undecided", core_a: "accepted", core_b: "pending", updated: "rejected",
                raw: "accepted"}  # fmt: skip
    for cid, word in expected.items():
        stored = _stored(session, cid)
        assert type(stored) is str and stored == word, (cid, stored)
    found = session.execute(
        text("SELECT candidate_id FROM consensus WHERE decision = 'accepted'"
             " AND candidate_id IN (:a, :b, :c, :d, :e)"),
        {"a": orm, "b": core_a, "c": core_b, "d": updated, "e": raw},
    ).scalars()  # fmt: skip
    assert sorted(found) == sorted([core_a, raw])
    # A comparison bound from the enum matches the word the rows hold.
    by_enum = session.scalars(
        select(Consensus.candidate_id).where(
            Consensus.decision == Decision.pending, Consensus.candidate_id == core_b
        )
    ).all()
    assert by_enum == [core_b]
