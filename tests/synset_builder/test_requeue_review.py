"""``synset requeue``: a suspect nobody left can vote on goes to review, the rest to voters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.consensus.dynamic import NO_VOTERS
from synset_builder.db.models import Annotator, Consensus, Image, Vote
from synset_builder.db.session import make_engine
from synset_builder.review import browse
from tests.conftest import CliResult
from tests.consensus_data import make_synset

WNID = "n01440764"


def test_suspects_whose_voters_all_voted_go_to_review(
    cli: Callable[..., CliResult], settings: Settings, photos: list[Path], tmp_path: Path
) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        cands = make_synset(session, WNID, photos, settings.data_dir, 3)
        team = [Annotator(username=f"a{k}", role="annotator", worker_id=f"w{k}") for k in range(2)]
        session.add_all(team)
        session.flush()
        # Items 0 and 1: the whole team voted yes. Item 2: one of the two voted.
        for cand, voters in zip(cands, (team, team, team[:1]), strict=True):
            for who in voters:
                session.add(Vote(candidate_id=cand.id, annotator_id=who.id, answer=True))
            session.add(Consensus(candidate_id=cand.id, p_yes=0.97, decision="accepted",
                                  method="dynamic", n_votes=len(voters)))  # fmt: skip
        shas = [session.get(Image, c.image_id).sha256 for c in cands]
        ids, sid = [c.id for c in cands], cands[0].synset_id
        session.commit()
    suspects = tmp_path / "suspects.csv"
    suspects.write_text(f"sha256,given_wnid\n{shas[0]},{WNID}\n{shas[2]},{WNID}\n")

    result = cli("requeue", str(suspects), "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "requeued": 2, "already_open": 0, "to_review": 1, "not_found": [],
    }  # fmt: skip
    with Session(engine) as session:
        first = session.get(Consensus, ids[0])
        assert (first.decision, first.reason) == ("undecided", NO_VOTERS)
        assert session.get(Consensus, ids[2]).decision == "pending"  # a2 can still vote
        # The review page lists the suspect nobody can vote on, where a curator looks.
        undecided = browse.page(session, sid, "undecided", unjudged=True)
        assert [(t.candidate_id, t.reason) for t in undecided] == [(ids[0], NO_VOTERS)]
        suspect = browse.page(session, sid, "suspect")
        assert [t.candidate_id for t in suspect] == [ids[0], ids[2]]
        assert browse.first_with_work(session, "undecided") == WNID  # /api/review/next serves it
    engine.dispose()

    again = cli("requeue", str(tmp_path / "suspects.csv"))
    assert again.code == 0 and "Requeued 0 candidate(s)" in again.out
    text_out = cli("requeue", str(suspects))
    assert "already waiting" in text_out.out
