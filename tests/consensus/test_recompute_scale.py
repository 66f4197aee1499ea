"""``synset consensus`` at scale: the final pass in several processes decides and
records exactly what one process does, the refit's arrays spilled to scratch files
give what they give in memory, and no pass holds more than a synset's votes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import chunked_refit, write_pool
from synset_builder.consensus import recompute as recompute_module
from synset_builder.consensus.recompute import RecomputeConfig, recompute
from synset_builder.consensus.synset_pass import READ_AHEAD
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Requeue,
    Synset,
    Vote,
)
from synset_builder.db.session import make_engine, session_scope
from tests.conftest import DatabaseFactory
from tests.consensus_data import bare_candidates

CFG = DynamicConfig(initial_size=3, initial_votes=5, max_votes=7)
SYNSETS, PER_SYNSET = 7, 24
SKILLS = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7]  # and one annotator who always says yes


def build(url: str) -> None:
    """The same project in any database: synsets, a crowd with a spammer, gold items,
    an open requeue, votes interleaved across synsets."""
    engine = make_engine(url)
    rng = np.random.default_rng(5)
    with session_scope(engine) as session:
        conn = session.connection()
        cands = [bare_candidates(conn, PER_SYNSET)[1] for _ in range(SYNSETS)]
        names = [f"a{i}" for i in range(len(SKILLS))] + ["always-yes"]
        people = conn.execute(
            insert(Annotator).returning(Annotator.id),
            [{"username": n, "role": "annotator"} for n in names],
        ).scalars().all()  # fmt: skip
        ids = [c for synset in cands for c in synset]
        truth = {c: bool(rng.random() < 0.3 + 0.1 * (k % 5)) for k, c in enumerate(ids)}
        conn.execute(insert(Gold), [{"candidate_id": s[-1], "answer": truth[s[-1]]} for s in cands])
        start = datetime(2026, 12, 1, tzinfo=UTC)
        pairs = [(c, k) for c in ids for k in range(len(people))]
        votes = []
        for n, j in enumerate(rng.permutation(len(pairs))[: len(pairs) * 3 // 4]):
            cid, k = pairs[j]
            answer = True if k == len(SKILLS) else bool(truth[cid] == (rng.random() < SKILLS[k]))
            votes.append({"candidate_id": cid, "annotator_id": people[k], "answer": answer,
                          "created_at": start + timedelta(minutes=n)})  # fmt: skip
        conn.execute(insert(Vote), votes)
        conn.execute(insert(Requeue), [{"candidate_id": cands[2][5], "reason": "test",
                                        "created_at": start + timedelta(days=1)}])  # fmt: skip
    engine.dispose()


def outcome(
    url: str, workers: int, config: RecomputeConfig | None = None, scratch: Path | None = None
) -> tuple[dict, dict, dict, dict]:
    """Run the recompute; every row it writes (timestamps aside)."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        result = recompute(session, config or RecomputeConfig(dynamic=CFG), workers=workers,
                           scratch_dir=scratch)  # fmt: skip
    with Session(engine) as session:
        rows = {
            r.candidate_id: (r.p_yes, r.decision, r.method, r.n_votes, r.initial, r.reason)
            for r in session.scalars(select(Consensus))
        }
        records = {
            q.annotator_id: (q.votes, q.gold_total, q.gold_correct, q.sensitivity,
                             q.specificity, q.nn, q.ny, q.yn, q.yy, q.excluded,
                             q.exclusion_reason)
            for q in session.scalars(select(AnnotatorQuality))
        }  # fmt: skip
        priors = dict(session.execute(select(Synset.id, Synset.prior_yes)).all())
        requeues = dict(session.execute(select(Requeue.id, Requeue.resolved_at)).all())
    engine.dispose()
    return rows, records, priors, {"excluded": result.excluded, "open": requeues}


def test_final_pass_in_processes_writes_what_one_process_writes(
    db_factory: DatabaseFactory, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One synset a task: several tasks per worker, more than the 2 x 3 kept in flight.
    monkeypatch.setattr(write_pool, "CHUNK", 1)
    pools = []
    in_processes = write_pool.write_in_processes
    monkeypatch.setattr(
        write_pool, "write_in_processes", lambda *a, **k: pools.append(in_processes(*a, **k))
    )
    one, many = db_factory.migrated(backend), db_factory.migrated(backend)
    build(one)
    build(many)
    rows, records, priors, extra = outcome(one, workers=1)
    assert {r[1] for r in rows.values()} >= {"accepted", "rejected"}
    assert list(extra["excluded"]) == ["always-yes"], "the fixture should exclude the spammer"
    got = outcome(many, workers=3)
    assert len(pools) == (1 if backend == "postgresql" else 0)  # processes on PostgreSQL only
    assert got[0] == rows  # every decision and probability, to the last bit
    assert got[1] == records  # the excluded annotator's measured record included
    assert got[2] == priors
    assert got[3]["excluded"] == extra["excluded"]
    assert (got[3]["open"][1] is None) == (extra["open"][1] is None)


def test_spilled_refit_in_tiny_chunks_writes_what_the_in_memory_one_writes(
    db_factory: DatabaseFactory, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The scratch files hold the arrays while the refit runs, and are gone after."""
    on_disk: list[set[str]] = []
    inner = chunked_refit.refit

    def watched(*args, **kwargs) -> None:  # noqa: ANN002, ANN003 - a test wrapper
        on_disk.append({p.name for p in tmp_path.rglob("*") if p.is_file()})
        inner(*args, **kwargs)

    monkeypatch.setattr(chunked_refit, "refit", watched)
    memory, spilled = db_factory.migrated(backend), db_factory.migrated(backend)
    build(memory)
    build(spilled)
    rows, records, priors, extra = outcome(memory, 1, RecomputeConfig(dynamic=CFG, spill=False))
    assert on_disk == [set()]
    assert {r[1] for r in rows.values()} >= {"accepted", "rejected"}
    tiny = RecomputeConfig(dynamic=CFG, spill=True, chunk_votes=5)
    got = outcome(spilled, 1, tiny, scratch=tmp_path)
    assert on_disk[1] >= {"vote_item.bin", "vote_worker.bin", "chunks.bin"}
    assert got[0] == rows  # every decision and probability, to the last bit
    assert got[1] == records
    assert got[2] == priors
    assert got[3] == extra
    assert list(tmp_path.iterdir()) == [], "the scratch folder should be gone"


def test_the_scratch_folder_goes_when_the_refit_fails(
    db_factory: DatabaseFactory, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fails(*_args, **_kwargs) -> None:  # noqa: ANN002, ANN003 - a test wrapper
        assert list(tmp_path.iterdir()), "the scratch folder should exist by now"
        raise MemoryError("a refit that failed half way")

    monkeypatch.setattr(chunked_refit, "refit", fails)
    url = db_factory.migrated(backend)
    build(url)
    with pytest.raises(MemoryError):
        outcome(url, 1, scratch=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_each_pass_holds_one_synset_of_votes_at_a_time(
    db_factory: DatabaseFactory, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bounded memory, structurally: the vote lists the passes read are one synset's,
    and at most the one being played, those the replay's reader holds ahead of it
    (``READ_AHEAD``) and the one it is reading are alive at any moment."""
    url = db_factory.migrated(backend)
    build(url)
    alive: list[int] = []
    peak = [0]

    class Held(list):
        def __del__(self) -> None:
            alive.pop()

    def counted(inner):  # noqa: ANN001, ANN202 - a test wrapper
        def votes(session: Session, sids: list[int]):  # noqa: ANN202
            for got in inner(session, sids):
                held = Held(got)
                alive.append(len(held))
                peak[0] = max(peak[0], len(alive))
                assert len({sid_of[c] for c, *_ in held}) <= 1
                yield held

        return votes

    engine = make_engine(url)
    with Session(engine) as session:
        sid_of = dict(session.execute(select(Candidate.id, Candidate.synset_id)).all())
    monkeypatch.setattr(
        recompute_module, "synset_answers", counted(recompute_module.synset_answers)
    )
    monkeypatch.setattr(write_pool, "synset_votes", counted(write_pool.synset_votes))
    with session_scope(engine) as session:
        recompute(session, RecomputeConfig(dynamic=CFG), workers=1)
    engine.dispose()
    assert 1 <= peak[0] <= READ_AHEAD + 2, peak[0]
