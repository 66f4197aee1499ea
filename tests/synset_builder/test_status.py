"""``synset status``: the ``pending`` counter (items still collecting votes) in JSON and table."""

from __future__ import annotations

import json

from sqlalchemy import update

from synset_builder.consensus.recompute import summarise
from synset_builder.db.models import Candidate, Consensus, Image, Synset
from synset_builder.db.session import make_engine, session_scope

# Distinct numbers, so a counter reading the wrong decision cannot pass by chance.
DECISIONS = {"pending": 4, "accepted": 3, "undecided": 2, "rejected": 1}


def seed_decisions(database_url: str) -> None:
    """A target synset (and a non-target one) whose candidates carry each decision."""
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        dog = Synset(wnid="n02084071", name="dog", lemmas=["dog"], target=True)
        animal = Synset(wnid="n00015388", name="animal", lemmas=["animal"], target=False)
        s.add_all([dog, animal])
        s.flush()
        # One candidate with no Consensus row at all: it must not count as pending.
        plan = ["none", *(d for d, n in DECISIONS.items() for _ in range(n))]
        for k, decision in enumerate(plan, start=1):
            img = Image(sha256=f"{k:064x}", path="x", width=1, height=1, format="JPEG", bytes=1)
            s.add(img)
            s.flush()
            cand = Candidate(image_id=img.id, synset_id=dog.id, source="urls", rank=k)
            s.add(cand)
            s.flush()
            if decision != "none":
                s.add(
                    Consensus(
                        candidate_id=cand.id,
                        p_yes=0.5,
                        decision=decision,
                        method="dynamic",
                        n_votes=1,
                    )
                )
    engine.dispose()


def test_status_counts_pending_items_in_json_and_table(cli, settings) -> None:
    seed_decisions(settings.database_url)

    result = cli("status", "--json")
    assert result.code == 0, result.err
    rows = {r["wnid"]: r for r in json.loads(result.out)}
    counts = rows["n02084071"]["counts"]
    assert counts["candidates"] == sum(DECISIONS.values()) + 1
    assert counts["pending"] == DECISIONS["pending"]
    assert counts["accepted"] == DECISIONS["accepted"]
    assert counts["undecided"] == DECISIONS["undecided"]
    assert counts["rejected_by_vote"] == DECISIONS["rejected"]
    assert rows["n00015388"]["counts"]["pending"] == 0
    keys = list(counts)
    assert keys.index("pending") == keys.index("undecided") + 1
    # No refit has learned a hard share: null, as /api/synsets says, not a 0.0 that
    # reads like "no hard items".
    assert rows["n02084071"]["hard_share"] is None

    table = cli("status")
    assert table.code == 0, table.err
    header, *lines, pooled = table.out.splitlines()
    assert pooled.startswith("Audited precision: no audit judged yet")  # issue 22
    columns = header.split()
    assert columns.index("pending") == columns.index("undecided") + 1
    (dog,) = [dict(zip(columns, line.split(), strict=True)) for line in lines]
    assert dog["wnid"] == "n02084071"
    assert dog["pending"] == str(DECISIONS["pending"])
    assert dog["undecided"] == str(DECISIONS["undecided"])
    assert dog["hard"] == "-"


def test_consensus_summary_says_null_until_a_share_is_learned(settings) -> None:
    seed_decisions(settings.database_url)
    engine = make_engine(settings.database_url)
    with session_scope(engine) as s:
        (row,) = summarise(s)
        assert row.as_json()["hard_share"] is None
        s.execute(update(Synset).where(Synset.wnid == "n02084071").values(hard_share=0.125))
        (row,) = summarise(s)
        assert row.hard_share == 0.125
    engine.dispose()
