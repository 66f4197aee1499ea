"""The indexed lease query serves what the consensus priority order says, tier by tier."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from annotator_web.serving import fetch
from annotator_web.serving.fetch import next_task
from synset_builder.db.models import (
    Annotator,
    Candidate,
    Consensus,
    Image,
    Lease,
    Report,
    Requeue,
    Synset,
    Takedown,
    utcnow,
)
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import Web
from tests.synset_builder.test_consensus_live import served


def _verdict(cid: int, decision: str, *, initial: bool = False) -> Consensus:
    return Consensus(
        candidate_id=cid, p_yes=0.5, decision=decision, method="dynamic", n_votes=3, initial=initial
    )


def _mixed_states(web: Web) -> list[int]:
    """Initial items (one decided), a requeued decided item, a decided item, the rest new."""
    c = web.seeded.candidate_ids
    with session_scope(web.engine) as s:
        s.add_all(
            [
                _verdict(c[0], "pending", initial=True),
                _verdict(c[1], "accepted", initial=True),
                _verdict(c[2], "pending", initial=True),
                _verdict(c[3], "rejected"),
                _verdict(c[4], "accepted"),
                Requeue(candidate_id=c[3], reason="trainer suspects it"),
            ]
        )
        # What live.ensure_initial_subset records along with the initial flags.
        synset = s.get(Synset, s.get(Candidate, c[0]).synset_id)
        synset.initial_ids = sorted(c[:3])
    return c


def test_tiers_match_priority_order_and_rest_is_a_rotation(web: Web) -> None:
    _mixed_states(web)
    with session_scope(web.engine) as s:
        me = s.scalar(select(Annotator.id).where(Annotator.username == "ann"))
        sid = s.scalar(select(Candidate.synset_id).limit(1))
        expected = served(s, sid)
        head = fetch._pick_fresh(s, web.statements, sid, me, 100, [], start=0)
        assert head == expected  # from key 0 it is exactly priority_order()
        assert len(expected) == 12 - 2  # two decided, not requeued, items are closed
        for start in (1, 10**9, fetch.SERVE_KEY_RANGE - 1):
            got = fetch._pick_fresh(s, web.statements, sid, me, 100, [], start=start)
            assert got[:3] == expected[:3]  # two open initial items, then the requeued one
            rest = expected[3:]
            k = rest.index(got[3])
            assert got[3:] == rest[k:] + rest[:k]
        assert fetch._pick_fresh(s, web.statements, sid, me, 2, [], start=5) == expected[:2]


def test_closed_items_are_never_leased_and_expired_leases_come_back(web: Web) -> None:
    c = _mixed_states(web)
    with session_scope(web.engine) as s:
        image_of = dict(s.execute(select(Candidate.id, Candidate.image_id)).all())
        ann, bob = (
            s.scalar(select(Annotator).where(Annotator.username == name)) for name in ("ann", "bob")
        )
        s.add(Report(image_id=image_of[c[5]], annotator_id=bob.id, reason="offensive"))
        sha = s.scalar(select(Image.sha256).where(Image.id == image_of[c[6]]))
        s.add(Takedown(kind="sha256", value=sha, reason="owner asked"))
    with session_scope(web.engine) as s:
        ann = s.scalar(select(Annotator).where(Annotator.username == "ann"))
        task = next_task(s, web.statements, annotator=ann, n=50, wnid=None, cfg=web.cfg)
        first = {i.candidate_id for i in task.items}
    closed = {c[1], c[4], c[5], c[6]}  # decided, decided, reported, taken down
    assert first == set(c) - closed
    with session_scope(web.engine) as s:
        bob = s.scalar(select(Annotator).where(Annotator.username == "bob"))
        assert next_task(s, web.statements, annotator=bob, n=50, wnid=None, cfg=web.cfg).items == []
        s.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    with session_scope(web.engine) as s:
        bob = s.scalar(select(Annotator).where(Annotator.username == "bob"))
        again = next_task(s, web.statements, annotator=bob, n=50, wnid=None, cfg=web.cfg)
        assert {i.candidate_id for i in again.items} == first


def test_hot_statements_need_no_rendering_per_execution() -> None:
    """Every statement of a fetch and a submit is complete text once compiled: an
    expanding ``IN`` list would be rendered into it again on every execution."""
    from sqlalchemy.dialects import postgresql as pg_dialect

    from annotator_web.serving import fetch_sql, submit_sql
    from synset_builder.consensus import live_sql

    picks = [*fetch_sql.fresh_picks(True), fetch_sql.gold_picks(True)]
    statements = [
        fetch_sql.synset_probe(True), fetch_sql.caller_place(), fetch_sql.held_items(),
        submit_sql.answer_state(True), submit_sql.write_answers(), live_sql.items_votes(True),
        live_sql.add_to_records(True), live_sql.upsert_consensus(True),
        *(fetch_sql.leased(p) for p in picks),
    ]  # fmt: skip
    dialect = pg_dialect.psycopg.dialect()
    for stmt in statements:
        assert "POSTCOMPILE" not in str(stmt.compile(dialect=dialect))
