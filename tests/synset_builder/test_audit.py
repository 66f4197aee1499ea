"""The precision audit: a seeded uniform sample, --more and --rejected, Wilson's interval,
the pooled figure, and what ``synset status`` and ``synset audit report`` print."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from synset_builder.db.models import Annotator, AuditSample, Consensus, Synset
from synset_builder.db.session import make_engine
from synset_builder.errors import NotFound
from synset_builder.review import audit, decisions
from synset_builder.review.figures import Figure, pooled, wilson
from tests.conftest import CliResult
from tests.consensus_data import bare_candidates


def decided_synset(session: Session, accepted: int, rejected: int = 0) -> tuple[str, list[int]]:
    """A synset whose first ``accepted`` items the crowd accepted, the rest rejected."""
    sid, ids = bare_candidates(session.connection(), accepted + rejected)
    session.execute(
        insert(Consensus),
        [{"candidate_id": cid, "p_yes": 0.99 if k < accepted else 0.01, "method": "dynamic",
          "decision": "accepted" if k < accepted else "rejected", "n_votes": 3}
         for k, cid in enumerate(ids)],
    )  # fmt: skip
    return session.get(Synset, sid).wnid, ids


def curator(session: Session, name: str = "auditor") -> int:
    person = Annotator(username=name, role="curator")
    session.add(person)
    session.flush()
    return person.id


def sample(session: Session, wnid: str, rnd: int | None = None) -> list[int]:
    stmt = select(AuditSample.candidate_id).join(Synset, Synset.id == AuditSample.synset_id)
    stmt = stmt.where(Synset.wnid == wnid)
    if rnd is not None:
        stmt = stmt.where(AuditSample.round == rnd)
    return sorted(session.scalars(stmt))


def test_the_sample_is_seeded_uniform_and_rounds_do_not_repeat(session: Session) -> None:
    wnid, ids = decided_synset(session, 20, 10)
    accepted = ids[:20]
    # The same seed draws the same items: Random(seed) over the accepted ids in order.
    (drawn,) = audit.start(session, [wnid], n=5, seed=7)
    assert (drawn.added, drawn.round, drawn.seed) == (5, 1, 7)
    assert sample(session, wnid) == sorted(random.Random(7).sample(accepted, 5))
    # An audit in progress: nothing more unless --more, which draws new items only.
    (again,) = audit.start(session, [wnid], n=5, seed=8)
    assert again.in_progress and again.added == 0 and len(sample(session, wnid)) == 5
    (more,) = audit.start(session, [wnid], n=5, seed=8, more=True)
    assert more.round == 2 and not set(sample(session, wnid, 1)) & set(sample(session, wnid, 2))
    assert set(sample(session, wnid)) <= set(accepted)  # only accepted items

    # Uniform: over 400 seeds, each of the 20 items is drawn about 400 * 5/20 = 100 times.
    hits: Counter[int] = Counter()
    for seed in range(400):
        nested = session.begin_nested()
        session.execute(AuditSample.__table__.delete())
        audit.start(session, [wnid], n=5, seed=seed)
        hits.update(sample(session, wnid))
        nested.rollback()
    assert set(hits) == set(accepted)
    assert all(60 <= hits[c] <= 140 for c in accepted), hits


def test_rejected_items_and_unknown_synsets(session: Session) -> None:
    wnid, ids = decided_synset(session, 4, 6)
    (drawn,) = audit.start(session, [wnid], n=3, rejected=True)
    kinds = dict(
        session.execute(
            select(AuditSample.candidate_id, AuditSample.kind).where(
                AuditSample.candidate_id.in_(ids)
            )
        ).all()
    )
    assert Counter(kinds.values()) == {"accepted": 3, "rejected": 3}
    assert all((cid in ids[:4]) == (kind == "accepted") for cid, kind in kinds.items())
    with pytest.raises(NotFound, match="n99999999"):
        audit.start(session, [wnid, "n99999999"], n=3)


def test_wilson_interval_values() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    # Published values (Wilson 1927; Newcombe 1998, table I) for 95%.
    lo, hi = wilson(50, 50)
    assert lo == pytest.approx(0.9287, abs=1e-4) and hi == 1.0
    lo, hi = wilson(45, 50)
    assert (lo, hi) == (pytest.approx(0.7864, abs=1e-4), pytest.approx(0.9565, abs=1e-4))
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(81, 263)
    assert (lo, hi) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))


def test_pooled_precision_weights_by_accepted_count() -> None:
    per = {1: Figure(50, 50, 50), 2: Figure(50, 50, 25), 3: Figure(50, 0, 0)}
    found = pooled(per, {1: 900, 2: 100, 3: 5000})
    assert found.precision == pytest.approx(0.95)  # 0.9 * 1.0 + 0.1 * 0.5; 3 unjudged
    assert found.synsets == 2 and found.judged == 100
    assert found.low < 0.95 < found.high <= 1.0
    assert pooled({}, {}).precision is None


def test_judging_the_audit_shows_in_status_and_report(
    cli: Callable[..., CliResult], settings
) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        wnid, ids = decided_synset(session, 10, 2)
        other, _ = decided_synset(session, 3)
        session.execute(Synset.__table__.update().values(target=True))
        cur = curator(session)
        session.commit()
    result = cli("audit", "start", wnid, "--n", "4", "--seed", "3")
    assert result.code == 0 and "4 item(s) drawn, round 1, seed 3" in result.out, result.err
    assert "in progress" in cli("audit", "start", wnid).out
    with Session(engine) as session:
        drawn = sample(session, wnid)
        # The curator confirms three and finds one wrong (then a repeat changes nothing).
        decisions.record(session, [(c, c != drawn[0]) for c in drawn], curator_id=cur)
        session.commit()
    engine.dispose()

    rows = {r["wnid"]: r for r in json.loads(cli("status", "--json").out)}
    assert rows[other]["audit"] is None
    found = rows[wnid]["audit"]
    lo, hi = wilson(3, 4)
    assert found == {"sampled": 4, "judged": 4, "confirmed": 3, "precision": 0.75,
                     "low": pytest.approx(lo), "high": pytest.approx(hi)}  # fmt: skip
    assert rows[wnid]["counts"]["accepted"] == 9  # the wrong acceptance is fixed at once
    table = cli("status").out.splitlines()
    assert table[-1].startswith("Audited precision, pooled over 1 synset(s)")
    assert "0.750" in table[-1]

    report = json.loads(cli("audit", "report", "--json").out)
    (entry,) = report["synsets"]
    assert (entry["wnid"], entry["judged"], entry["confirmed"]) == (wnid, 4, 3)
    assert [w["candidate_id"] for w in report["wrong"]] == [drawn[0]]
    assert report["pooled"]["precision"] == 0.75
    text = cli("audit", "report").out
    assert f"wrong: item {drawn[0]}" in text and "precision 0.750" in text
