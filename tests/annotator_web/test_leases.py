"""Leases under concurrency: many annotators asking at once never share an item."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from annotator_web.serving.fetch import next_task
from synset_builder.db.models import Annotator
from synset_builder.db.session import session_scope
from tests.annotator_web.webtools import Web, password_hash


def test_concurrent_requests_get_disjoint_items(web: Web) -> None:
    with session_scope(web.engine) as s:
        s.add_all(
            [
                Annotator(username=f"w{k}", role="annotator", password_hash=password_hash())
                for k in range(6)
            ]
        )
    with session_scope(web.engine) as s:
        ids = list(s.scalars(select(Annotator.id).where(Annotator.username.like("w%"))))
    got: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(ids))

    def ask(annotator_id: int) -> None:
        try:
            barrier.wait()
            with session_scope(web.engine) as s:
                me = s.get(Annotator, annotator_id)
                task = next_task(s, web.statements, annotator=me, n=3, wnid=None, cfg=web.cfg)
                got[annotator_id] = [i.candidate_id for i in task.items]
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    leased = [c for items in got.values() for c in items]
    assert len(leased) == len(set(leased)) == 12  # 12 items, 6 x 3 asked: nobody shares
    assert set(leased) == set(web.seeded.candidate_ids)


def test_lease_writes_alone_skip_the_wal_flush_on_postgresql(web: Web) -> None:
    """A fetch's lease statement commits asynchronously; votes keep synchronous commits."""
    if web.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no synchronous_commit")
    with session_scope(web.engine) as s:
        me = s.scalars(select(Annotator).where(Annotator.username == "ann")).one()
        assert s.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
        task = next_task(s, web.statements, annotator=me, n=3, wnid=None, cfg=web.cfg)
        assert task.items
        # set for the lease statement's transaction (here the test's), not the connection
        assert s.execute(text("SHOW synchronous_commit")).scalar_one() == "off"
    with session_scope(web.engine) as s:
        assert s.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
