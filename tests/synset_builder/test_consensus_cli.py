"""``synset votes import``, ``synset consensus`` and ``synset consensus evaluate``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.cli import main
from synset_builder.config import Settings
from synset_builder.db.models import Annotator, AnnotatorQuality, Consensus, Image, Vote
from synset_builder.db.session import make_engine
from tests.conftest import CROWD, CliResult
from tests.consensus_data import make_synset

FACES = CROWD / "face_sentiment"
WNID = "n02123045"
N_ITEMS = 40


@pytest.fixture
def voted(settings: Settings, photos: list[Path], tmp_path: Path) -> tuple[Path, dict[str, bool]]:
    """A synset of 40 real photos and a vote file: three careful annotators, one spammer.

    Items are image sha256 hashes (read with ``--synset``); even items are true.
    """
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        cands = make_synset(session, WNID, photos, settings.data_dir, N_ITEMS)
        shas = [session.get(Image, c.image_id).sha256 for c in cands]
        session.commit()
    engine.dispose()
    truth = {sha: k % 2 == 0 for k, sha in enumerate(shas)}
    lines = ["image,annotator,answer"]
    for k, (sha, answer) in enumerate(truth.items()):
        for n, who in enumerate(["careful1", "careful2", "careful3"]):
            said = answer != ((k + n) % 9 == 0)
            lines.append(f"{sha},{who},{'yes' if said else 'no'}")
        lines.append(f"{sha},always_yes,yes")
    path = tmp_path / "votes.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, truth


def test_import_is_idempotent_and_consensus_excludes_the_spammer(
    cli: Callable[..., CliResult], settings: Settings, voted: tuple[Path, dict[str, bool]]
) -> None:
    path, truth = voted
    first = cli("votes", "import", str(path), "--synset", WNID)
    assert first.code == 0, first.err
    assert "160 votes added" in first.out
    again = cli("votes", "import", str(path), "--synset", WNID)
    assert again.code == 0 and "0 votes added, 160 already present" in again.out

    run = cli("consensus", "--json")
    assert run.code == 0, run.err
    out = json.loads(run.out)
    assert list(out["excluded"]) == ["crowd-always_yes"]
    assert "below the floor" in out["excluded"]["crowd-always_yes"]
    (summary,) = out["synsets"]
    assert summary["wnid"] == WNID
    assert summary["accepted"] + summary["rejected"] + summary["pending"] == N_ITEMS

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        spam = session.scalar(select(Annotator).where(Annotator.username == "crowd-always_yes"))
        assert spam.password_hash is None
        quality = session.get(AnnotatorQuality, spam.id)
        assert quality.excluded and quality.votes == N_ITEMS
        assert quality.specificity < 0.3 < 0.7 < quality.sensitivity
        rows = session.execute(
            select(Image.sha256, Consensus.decision, Consensus.n_votes, Consensus.initial).join(
                Image, Image.id == Consensus.candidate_id
            )
        ).all()
        n_votes = session.query(Vote).count()
    engine.dispose()
    assert n_votes == 4 * N_ITEMS
    for sha, decision, n, _ in rows:
        assert n == 3  # the spammer's votes no longer count
        if decision == "accepted":
            assert truth[sha]
        elif decision == "rejected":
            assert not truth[sha]
        else:
            assert decision == "pending"
    assert sum(1 for r in rows if r.initial) == 10

    people = json.loads(cli("consensus", "annotators", "--json").out)
    assert people[0]["username"] == "crowd-always_yes" and people[0]["excluded"]
    assert all(not p["excluded"] and p["skill"] > 0.7 for p in people[1:])

    # Idempotent: a second run writes the same decisions.
    assert json.loads(cli("consensus", "--json").out) == out
    status = json.loads(cli("status", "--json").out)
    counts = next(s["counts"] for s in status if s["wnid"] == WNID)
    assert counts["accepted"] == summary["accepted"]
    assert counts["rejected_by_vote"] == summary["rejected"]


def test_majority_method_decides_every_item(
    cli: Callable[..., CliResult], voted: tuple[Path, dict[str, bool]]
) -> None:
    path, truth = voted
    assert cli("votes", "import", str(path), "--synset", WNID).code == 0
    run = cli("consensus", "--method", "majority")
    assert run.code == 0, run.err
    line = next(ln for ln in run.out.splitlines() if ln.startswith(WNID))
    assert line.split()[2:6] == ["20", "20", "0", "0"]
    bad = cli("consensus", "--method", "coin-flip")
    assert bad.code != 0 and "Unknown consensus method" in bad.err


def test_import_reports_bad_rows_and_refuses_contradictions(
    cli: Callable[..., CliResult], voted: tuple[Path, dict[str, bool]], tmp_path: Path
) -> None:
    path, truth = voted
    assert cli("votes", "import", str(path), "--synset", WNID).code == 0
    sha = next(iter(truth))
    flipped = tmp_path / "flip.csv"
    flipped.write_text(
        f"item,worker,label\n{sha},careful2,{'no' if truth[sha] else 'yes'}\n"
        f"{'0' * 64},careful1,yes\n{sha},careful9,maybe\n"
    )
    res = cli("votes", "import", str(flipped), "--synset", WNID)
    assert res.code == 0
    assert "0 votes added" in res.out and "3 skipped" in res.out
    assert "already voted the other way" in res.err and "not a yes/no answer" in res.err
    missing = cli("votes", "import", str(path), "--synset", "n00000000")
    assert missing.code != 0 and "no synset n00000000" in missing.err
    no_synset = cli("votes", "import", str(path))
    assert no_synset.code != 0 and "--synset" in no_synset.err


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return CliResult(code, out.out, out.err)


def test_evaluate_on_face_sentiment(capsys: pytest.CaptureFixture[str]) -> None:
    res = run_main(
        capsys, "consensus", "evaluate", str(FACES / "answer.csv"),
        "--truth", str(FACES / "truth.csv"), "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    results = {r["method"]: r for r in json.loads(res.out)}
    assert set(results) == {"majority", "dawid-skene", "dynamic"}
    assert results["dawid-skene"]["accuracy"] >= 0.640
    assert results["dawid-skene"]["accuracy"] > results["majority"]["accuracy"]
    # The dynamic rule stops early: fewer votes per item than the full file.
    assert results["dynamic"]["mean_votes"] < results["majority"]["mean_votes"] * 0.7
    assert results["dynamic"]["accuracy"] >= results["majority"]["accuracy"] - 0.04

    capped = run_main(
        capsys, "consensus", "evaluate", str(FACES / "answer.csv"),
        "--truth", str(FACES / "truth.csv"), "--method", "majority", "--max-votes", "3",
    )  # fmt: skip
    assert capped.code == 0
    (row,) = [ln.split() for ln in capped.out.splitlines()[1:]]
    assert row[0] == "majority" and float(row[2]) == 3.0


def test_evaluate_reads_any_header_and_yes_no_labels(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    votes = tmp_path / "v.tsv"
    votes.write_text(
        "task\tannotator\tjudgement\n"
        "x\tw1\tyes\nx\tw2\tyes\nx\tw3\tno\ny\tw1\tno\ny\tw2\tno\ny\tw3\tno\n"
    )
    truth = tmp_path / "t.csv"
    truth.write_text("id,gold\nx,1\ny,0\n")
    res = run_main(capsys, "consensus", "evaluate", str(votes), "--truth", str(truth), "--json")
    assert res.code == 0, res.err
    assert all(r["accuracy"] == 1.0 for r in json.loads(res.out))
    short = tmp_path / "short.csv"
    short.write_text("a,b\n1,2\n")
    bad = run_main(capsys, "consensus", "evaluate", str(short), "--truth", str(truth))
    assert bad.code != 0 and "Line 2" in bad.err
    gone = run_main(
        capsys, "consensus", "evaluate", str(tmp_path / "nope.csv"), "--truth", str(truth)
    )
    assert gone.code != 0 and "does not exist" in gone.err
