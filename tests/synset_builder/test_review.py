"""Expert decisions: over consensus in status, export and gold, and not undone by a rerun."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.config import Settings
from synset_builder.db.models import Annotator, AuditSample, Consensus, Gold, Image, Vote
from synset_builder.db.session import make_engine
from synset_builder.review import decisions
from tests.conftest import CliResult
from tests.consensus_data import make_synset

WNID = "n02123045"


def seed_votes(settings: Settings, photos: list[Path]) -> tuple[list[int], list[str], list[int]]:
    """Ten real photos: items 0-5 get three yes votes, 6-9 three no; item 1 is gold
    (yes) from a gold file. Returns candidate ids, their sha256s, the voters' ids."""
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        cands = make_synset(session, WNID, photos, settings.data_dir, 10)
        people = [Annotator(username=f"voter{k}", role="annotator") for k in range(3)]
        session.add_all([*people, Annotator(username="cur", role="curator")])
        session.flush()
        for k, cand in enumerate(cands):
            for person in people:
                session.add(Vote(candidate_id=cand.id, annotator_id=person.id, answer=k < 6))
        session.add(Gold(candidate_id=cands[1].id, answer=True))
        shas = [session.get(Image, c.image_id).sha256 for c in cands]
        ids, voters = [c.id for c in cands], [p.id for p in people]
        session.commit()
    engine.dispose()
    return ids, shas, voters


def status_counts(cli: Callable[..., CliResult]) -> dict[str, int]:
    result = cli("status", "--json")
    assert result.code == 0, result.err
    (row,) = [r for r in json.loads(result.out) if r["wnid"] == WNID]
    return row["counts"]


def exported(cli: Callable[..., CliResult], out: Path) -> set[str]:
    result = cli("export", str(out), "--workers", "1")
    assert result.code == 0, result.err
    with (out / "manifest.csv").open(newline="") as fh:
        return {row["sha256"] for row in csv.DictReader(fh)}


def judge(settings: Settings, labels: list[tuple[int, bool | None]]) -> decisions.Judged:
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        curator = session.scalar(select(Annotator.id).where(Annotator.username == "cur"))
        done = decisions.record(session, labels, curator_id=curator)
        session.commit()
    engine.dispose()
    return done


def test_expert_decisions_override_consensus_and_survive_a_rerun(
    cli: Callable[..., CliResult], settings: Settings, photos: list[Path], tmp_path: Path
) -> None:
    ids, shas, voters = seed_votes(settings, photos)
    assert cli("consensus", "--method", "majority").code == 0
    crowd = status_counts(cli)
    assert (crowd["accepted"], crowd["rejected_by_vote"]) == (6, 4)

    # Reject two accepted items (item 1 is a gold file's "yes": that answer stands),
    # accept one rejected item.
    done = judge(settings, [(ids[0], False), (ids[1], False), (ids[6], True)])
    assert done.recorded == 3
    for run in range(2):  # before and after a later consensus run
        counts = status_counts(cli)
        assert (counts["accepted"], counts["rejected_by_vote"]) == (5, 5), run
        assert counts["votes"] == crowd["votes"]  # the crowd's votes stay
        in_export = exported(cli, tmp_path / f"out{run}")
        assert shas[6] in in_export and not {shas[0], shas[1]} & in_export
        assert cli("consensus", "--method", "majority").code == 0

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        # The rerun decided the gold file's item by its gold answer; the expert still wins.
        assert session.get(Consensus, ids[1]).decision == "accepted"
        gold = dict(session.execute(select(Gold.candidate_id, Gold.answer)).all())
        assert gold == {ids[0]: False, ids[1]: True, ids[6]: True}
        # The judgements are gold for the voters: items 0 and 6 answered wrong, 1 right.
        figures = tally.read_annotators(session)
        for voter in voters:
            assert figures[voter]["gold_answered"] == 3
            assert figures[voter]["gold_correct"] == 1
    engine.dispose()

    # Withdrawn: item 0 goes back to the crowd's decision and stops being gold (the
    # consensus run that had it as gold decided it so; the next one reads the votes).
    judge(settings, [(ids[0], None)])
    assert cli("consensus", "--method", "majority").code == 0
    counts = status_counts(cli)
    assert (counts["accepted"], counts["rejected_by_vote"]) == (6, 4)
    assert shas[0] in exported(cli, tmp_path / "out-after")
    with Session(engine) as session:
        assert session.get(Gold, ids[0]) is None
        assert tally.read_annotators(session)[voters[0]]["gold_answered"] == 2
    engine.dispose()


def test_unknown_items_refuse_the_whole_batch(session: Session) -> None:
    curator = Annotator(username="cur-unknown", role="curator")
    session.add(curator)
    session.flush()
    before = session.scalar(select(Gold.candidate_id).limit(1))
    try:
        decisions.record(session, [(2**31 - 1, True)], curator_id=curator.id)
    except decisions.NotFound as exc:
        assert "2147483647" in str(exc)
    else:
        raise AssertionError("an unknown item was accepted")
    assert session.scalar(select(Gold.candidate_id).limit(1)) == before


def test_the_datasheet_shows_the_audit_beside_the_models_estimate(
    cli: Callable[..., CliResult], settings: Settings, photos: list[Path], tmp_path: Path
) -> None:
    ids, _, _ = seed_votes(settings, photos)
    assert cli("consensus", "--method", "majority").code == 0
    exported(cli, tmp_path / "before")
    sheet = (tmp_path / "before" / "datasheet.md").read_text()
    assert "no blind audit was judged for these classes" in sheet

    assert cli("audit", "start", WNID, "--n", "4", "--seed", "1").code == 0
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        drawn = sorted(session.scalars(select(AuditSample.candidate_id)))
    engine.dispose()
    assert len(drawn) == 4 and set(drawn) <= set(ids[:6])
    judge(settings, [(cid, cid != drawn[0]) for cid in drawn])
    exported(cli, tmp_path / "after")
    sheet = (tmp_path / "after" / "datasheet.md").read_text()
    # Decided by majority vote: P(yes) is a share of votes, not a model's estimate.
    assert "is the share of yes votes (majority vote), not an estimate of precision" in sheet
    assert "own estimate" not in sheet
    assert "a blind audit by curators measured 0.750 (95% Wilson interval" in sheet
