"""``synset votes import``, ``synset consensus`` and ``synset consensus evaluate``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.cli import main
from synset_builder.cli.consensus import NOTHING_DECIDED
from synset_builder.config import Settings
from synset_builder.consensus.dynamic import NO_VOTERS
from synset_builder.consensus.evaluate import spam_votes, vote_orders
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
    assert "same answer" in out["excluded"]["crowd-always_yes"]
    (summary,) = out["synsets"]
    assert summary["wnid"] == WNID
    # The four imported crowd workers are the whole team and all voted on everything:
    # what cannot be settled is undecided (nobody left), never pending.
    assert summary["accepted"] + summary["rejected"] + summary["undecided"] == N_ITEMS
    # 27 items are unanimous (13 true): decided. A 2-1 split by annotators right 8
    # times in 9 is right 8 times in 9, short of the 0.9 threshold: it may stay open.
    assert summary["pending"] == 0 and summary["accepted"] >= 13 and summary["rejected"] >= 14
    # The share of hard items the refit learned, as the synset's row holds it.
    assert 0.0 < summary["hard_share"] < 0.5
    # `synset status` shows it too (the plain-SQLite reader and the ORM's alike).
    status = cli("status", "--json")
    assert status.code == 0, status.err
    (row,) = [r for r in json.loads(status.out) if r["wnid"] == WNID]
    assert row["hard_share"] == pytest.approx(summary["hard_share"], abs=1e-6)
    table = cli("status")
    header, line = table.out.splitlines()[:2]
    assert "hard" in header.split()
    assert line.split()[header.split().index("hard")] == f"{summary['hard_share']:.2f}"

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        spam = session.scalar(select(Annotator).where(Annotator.username == "crowd-always_yes"))
        assert spam.password_hash is None
        quality = session.get(AnnotatorQuality, spam.id)
        assert quality.excluded and quality.votes == N_ITEMS
        assert quality.specificity < 0.3 < 0.7 < quality.sensitivity
        rows = session.execute(
            select(
                Image.sha256,
                Consensus.decision,
                Consensus.n_votes,
                Consensus.initial,
                Consensus.reason,
            ).join(Image, Image.id == Consensus.candidate_id)
        ).all()
        n_votes = session.query(Vote).count()
    engine.dispose()
    assert n_votes == 4 * N_ITEMS
    for sha, decision, n, _, reason in rows:
        assert n == 3  # the spammer's votes no longer count
        if decision == "accepted":
            assert truth[sha]
        elif decision == "rejected":
            assert not truth[sha]
        else:
            assert (decision, reason) == ("undecided", NO_VOTERS)
    assert sum(1 for r in rows if r.initial) == 10

    people = json.loads(cli("consensus", "annotators", "--json").out)
    assert people[0]["username"] == "crowd-always_yes" and people[0]["excluded"]
    assert all(not p["excluded"] and p["skill"] > 0.7 for p in people[1:])
    header, spammer, *_ = cli("consensus", "annotators").out.splitlines()
    column = header.split().index("skill")
    assert spammer.split()[column] == f"{people[0]['skill']:.2f}"

    # Idempotent: a second run writes the same decisions.
    assert json.loads(cli("consensus", "--json").out) == out
    status = json.loads(cli("status", "--json").out)
    counts = next(s["counts"] for s in status if s["wnid"] == WNID)
    assert counts["accepted"] == summary["accepted"]
    assert counts["rejected_by_vote"] == summary["rejected"]


def test_a_worker_of_a_later_file_is_waited_for_until_disabled(
    cli: Callable[..., CliResult], voted: tuple[Path, dict[str, bool]], tmp_path: Path
) -> None:
    """Imported workers are the team (docs/consensus.md, teams of any size): one new id
    in a later file reopens what nobody was left for; disabling it closes them again."""
    path, truth = voted
    assert cli("votes", "import", str(path), "--synset", WNID).code == 0

    def pending() -> tuple[int, int]:
        run = cli("consensus", "--json")
        assert run.code == 0, run.err
        (summary,) = json.loads(run.out)["synsets"]
        return summary["pending"], summary["undecided"]

    assert pending()[0] == 0
    first = next(iter(truth))
    later = tmp_path / "later.csv"
    later.write_text(f"image,annotator,answer\n{first},dave,{'yes' if truth[first] else 'no'}\n")
    assert cli("votes", "import", str(later), "--synset", WNID).code == 0
    waiting, _ = pending()
    assert waiting > 0
    assert cli("users", "disable", "crowd-dave").code == 0
    assert pending() == (0, pending()[1]) and pending()[1] > 0


def test_a_run_that_decides_nothing_says_why(
    cli: Callable[..., CliResult], settings: Settings, photos: list[Path], tmp_path: Path
) -> None:
    """Three voters who say yes to everything: careful, or yes-sayers? Without gold
    nobody can tell, so nothing passes; the curator is told why and what helps."""
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        cands = make_synset(session, WNID, photos, settings.data_dir, 12)
        session.commit()
        ids = [c.id for c in cands]
    engine.dispose()
    votes = tmp_path / "yes.csv"
    votes.write_text("item,worker,label\n" + "".join(
        f"{cid},{who},yes\n" for cid in ids for who in ("ann1", "ann2", "ann3")
    ))  # fmt: skip
    assert cli("votes", "import", str(votes)).code == 0
    run = cli("consensus")
    assert run.code == 0, run.err
    assert run.out.splitlines()[-1] == NOTHING_DECIDED
    majority = cli("consensus", "--method", "majority")
    assert NOTHING_DECIDED not in majority.out


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
    # Without --synset a sha256 still names its one candidate (ambiguity: test_votes_formats).
    no_synset = cli("votes", "import", str(path))
    assert no_synset.code == 0 and "0 votes added, 160 already present" in no_synset.out


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
    (row,) = [ln.split() for ln in capped.out.splitlines() if ln.startswith("majority")]
    assert float(row[2]) == 3.0
    assert row[3] == "-"  # one order: no range to show


def test_evaluate_applies_the_settings_and_the_cap(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dynamic rule is the project's (its settings, as the web app applies them),
    with options over them; ``--max-votes`` caps it as it caps the others, initial
    items included (they used to wait for their round of 10 past any cap)."""

    def dynamic(*args: str) -> dict:
        res = run_main(capsys, "consensus", "evaluate", str(FACES / "answer.csv"),
                       "--truth", str(FACES / "truth.csv"), "--method", "dynamic",
                       "--passes", "1", "--json", *args)  # fmt: skip
        assert res.code == 0, res.err
        (row,) = json.loads(res.out)
        return row

    default = dynamic()
    by_option = dynamic("--initial-size", "0")
    assert by_option["mean_votes"] < default["mean_votes"]
    monkeypatch.setenv("SYNSET_CONSENSUS_INITIAL_SIZE", "0")
    assert dynamic() == by_option
    monkeypatch.setenv("SYNSET_CONSENSUS_INITIAL_SIZE", "10")
    assert dynamic("--initial-votes", "3")["mean_votes"] < default["mean_votes"]
    for cap in (1, 2):
        assert dynamic("--max-votes", str(cap))["mean_votes"] <= cap


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


def small_sets(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A binary and a 3-class vote file (4 workers vote on every item, a few mistakes)."""
    binary, classes = ["item,worker,label"], ["item,worker,label"]
    binary_truth, class_truth = ["item,truth"], ["item,truth"]
    names = ["cat", "dog", "bird"]
    for k in range(16):
        answer, name = k % 2 == 0, names[k % 3]
        binary_truth.append(f"b{k},{'yes' if answer else 'no'}")
        class_truth.append(f"c{k},{name}")
        for n in range(4):
            wrong = (k + n) % 5 == 0
            binary.append(f"b{k},w{n},{'yes' if answer != wrong else 'no'}")
            classes.append(f"c{k},w{n},{names[(k + wrong) % 3]}")
    paths = []
    for name, lines in [("b.csv", binary), ("bt.csv", binary_truth),
                        ("c.csv", classes), ("ct.csv", class_truth)]:  # fmt: skip
        paths.append(tmp_path / name)
        paths[-1].write_text("\n".join(lines) + "\n")
    return paths[0], paths[1], paths[2], paths[3]


def evaluate_json(
    capsys: pytest.CaptureFixture[str], votes: Path, truth: Path, *args: str
) -> dict[str, dict]:
    """`evaluate --json` with ARGS, by method."""
    res = run_main(capsys, "consensus", "evaluate", str(votes), "--truth", str(truth), "--json",
                   *args)  # fmt: skip
    assert res.code == 0, res.err
    return {r["method"]: r for r in json.loads(res.out)}


def test_evaluate_replays_seeded_orders(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    votes, truth, _, _ = small_sets(tmp_path)
    # One vote per item: the answer depends on which vote comes first.
    first = evaluate_json(capsys, votes, truth, "--method", "majority", "--max-votes", "1")
    # File order: w0 votes first and is wrong on items 0, 5, 10, 15.
    assert first["majority"]["accuracy"] == 12 / 16 == first["majority"]["accuracy_min"]
    capped = ("--orders", "3", "--max-votes", "1")
    runs = [evaluate_json(capsys, votes, truth, *capped, "--seed", str(s)) for s in (0, 0, 1, 2)]
    assert runs[0] == runs[1]
    assert len({json.dumps(r, sort_keys=True) for r in runs}) > 2
    for run in runs:
        assert set(run) == {"majority", "dawid-skene", "dynamic"}
        for r in run.values():
            assert r["accuracy_min"] <= r["accuracy"] <= r["accuracy_max"]
        # (dynamic votes its initial subset to --initial-votes whatever the cap)
        assert run["majority"]["mean_votes"] == run["dawid-skene"]["mean_votes"] == 1.0
    assert any(r["accuracy_min"] < r["accuracy_max"] for run in runs for r in run.values())


def test_evaluate_scores_binary_and_multiclass_sets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    votes, truth, class_votes, class_truth = small_sets(tmp_path)
    binary = evaluate_json(capsys, votes, truth, "--orders", "2")
    multi = evaluate_json(capsys, class_votes, class_truth, "--orders", "2")
    for results in (binary, multi):
        for r in results.values():
            assert 0.0 <= r["decided"] <= 1.0 and 0.0 <= r["expected_accuracy"] <= 1.0
            assert r["items"] == 16
    for r in binary.values():
        assert 0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0
    assert all("precision" not in r and "recall" not in r for r in multi.values())
    # Three of four votes agree on every item (all four where k % 5 == 1): no
    # majority tie, all correct, top vote share 0.75 or 1.
    expected = pytest.approx((13 * 0.75 + 3 * 1.0) / 16)
    assert binary["majority"] | {"accuracy": 1.0, "decided": 1.0, "expected_accuracy": expected,
                                 "precision": 1.0, "recall": 1.0} == binary["majority"]  # fmt: skip
    text = run_main(capsys, "consensus", "evaluate", str(votes), "--truth", str(truth))
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0].split() == ["method", "accuracy", "votes/item", "acc", "min-max",
                                "decided", "expected", "precision", "recall"]  # fmt: skip
    assert "16 items with truth; file order; dynamic: 2 passes." in lines[-1]
    multi_text = run_main(capsys, "consensus", "evaluate", str(class_votes),
                          "--truth", str(class_truth), "--orders", "2")  # fmt: skip
    assert "precision" not in multi_text.out
    assert "mean of 2 random orders (seed 0)" in multi_text.out


def test_evaluate_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--passes 1 stops at the end of the list; the default plays what was skipped
    again after the last refit, which never takes fewer votes; out of range: refused."""
    votes, truth, _, _ = small_sets(tmp_path)
    args = ("--method", "dynamic", "--orders", "3")
    one = evaluate_json(capsys, votes, truth, *args, "--passes", "1")["dynamic"]
    two = evaluate_json(capsys, votes, truth, *args)["dynamic"]
    assert two == evaluate_json(capsys, votes, truth, *args, "--passes", "2")["dynamic"]
    assert two["mean_votes"] >= one["mean_votes"]
    text = run_main(capsys, "consensus", "evaluate", str(votes), "--truth", str(truth),
                    "--passes", "1", "--method", "dynamic")  # fmt: skip
    assert text.out.splitlines()[-1].endswith("file order; dynamic: one pass.")
    for bad in ("0", "11"):
        refused = run_main(capsys, "consensus", "evaluate", str(votes), "--truth", str(truth),
                           "--passes", bad)  # fmt: skip
        assert refused.code != 0
        assert f"--passes must lie in [1, 10], not {bad}." in refused.err


def test_evaluate_adds_spammers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    votes, truth, class_votes, class_truth = small_sets(tmp_path)
    base = evaluate_json(capsys, votes, truth)
    assert base["majority"]["mean_votes"] == 4.0
    for fraction, added in [("0.25", 1), ("0.5", 2), ("2", 8)]:
        for orders in ("1", "2"):
            spammed = evaluate_json(capsys, votes, truth, "--spammers", fraction,
                                    "--orders", orders, "--method", "majority")  # fmt: skip
            assert spammed["majority"]["mean_votes"] == 4.0 + added
    multi = evaluate_json(capsys, class_votes, class_truth, "--spammers", "0.75")
    assert multi["majority"]["mean_votes"] == 7.0
    # One always-yes spammer: still a strict majority everywhere, but the top vote
    # share moves: positives 0.75 -> 0.8 (1 stays 1), negatives 0.75 -> 0.6 (1 -> 0.8).
    one = evaluate_json(capsys, votes, truth, "--spammers", "0.25", "--method", "majority")
    assert one["majority"]["accuracy"] == 1.0
    assert one["majority"]["expected_accuracy"] == pytest.approx(
        (7 * 0.8 + 1 + 2 * 0.8 + 6 * 0.6) / 16
    )


def test_evaluate_says_which_spammers_the_dynamic_rule_caught(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A robustness run says whether the rule saw the spammers, not only what they
    cost: on face_sentiment every always-one-answer worker is excluded, no real one."""
    res = run_main(capsys, "consensus", "evaluate", str(FACES / "answer.csv"),
                   "--truth", str(FACES / "truth.csv"), "--spammers", "0.2", "--json")  # fmt: skip
    assert res.code == 0, res.err
    rows = {r["method"]: r for r in json.loads(res.out)}
    assert rows["dynamic"]["excluded_spammers"] == 1.0
    assert rows["dynamic"]["excluded_workers"] == 0.0
    assert "excluded_spammers" not in rows["majority"]
    plain = run_main(capsys, "consensus", "evaluate", str(FACES / "answer.csv"),
                     "--truth", str(FACES / "truth.csv"), "--method", "dynamic")  # fmt: skip
    (row,) = json.loads(run_main(capsys, "consensus", "evaluate", str(FACES / "answer.csv"),
                                 "--truth", str(FACES / "truth.csv"), "--method", "dynamic",
                                 "--json").out)  # fmt: skip
    assert "excluded_spammers" not in row and "spammers excluded" not in plain.out


def test_spammers_never_clash_and_come_after_each_first_vote() -> None:
    votes = [("x", "__spam0", "a"), ("y", "w1", "b"), ("x", "w1", "c")]
    spam = spam_votes(votes, 1.5, ["a", "b", "c"])
    names = [w for _, w, _ in spam["x"]]
    assert names == ["___spam0", "___spam1", "___spam2"]
    assert [label for _, _, label in spam["y"]] == ["a", "b", "c"]
    (stream,) = vote_orders(votes, spam, 1, seed=0)
    assert stream[:4] == [votes[0], *spam["x"]]
    assert stream[4:] == [votes[1], *spam["y"], votes[2]]
    shuffled = list(vote_orders(votes, spam, 2, seed=0))
    assert all(sorted(map(repr, s)) == sorted(map(repr, stream)) for s in shuffled)
    assert shuffled == list(vote_orders(votes, spam, 2, seed=0))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--orders", "0", "--orders must lie in [1, 1000]"),
     ("--orders", "100000000", "--orders must lie in [1, 1000]"),
     ("--spammers", "5.5", "--spammers must lie in [0, 5]"),
     ("--spammers", "-0.1", "--spammers must lie in [0, 5]"),
     ("--threshold", "nan", "--threshold: Input should be a finite number")],
)  # fmt: skip
def test_evaluate_refuses_bad_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, value: str, message: str
) -> None:
    votes, truth, _, _ = small_sets(tmp_path)
    res = run_main(capsys, "consensus", "evaluate", str(votes), "--truth", str(truth),
                   option, value)  # fmt: skip
    assert res.code != 0
    assert message in res.err and len(res.err.strip().splitlines()) == 1
    assert "Traceback" not in res.err and res.out == ""


def test_evaluate_says_what_it_left_out(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Rows a score cannot use are left out and said on stderr; truth no vote can
    match is refused (every method would read 0); a folder or an empty file is
    named for what it is."""
    votes = tmp_path / "v.csv"
    votes.write_text(
        "item,worker,label\n"
        "x,w1,yes\nx,w2,yes\nx,w3,no\ny,w1,no\ny,w2,no\ny,w3,no\n"
        "x,w1,no\n"  # a repeat: the first vote stands
        "y,,yes\nx,w4,\n"  # no worker, no label
    )
    truth = tmp_path / "t.csv"
    truth.write_text("id,gold\nx,1\ny,0\nz,1\n,1\n")
    res = run_main(capsys, "consensus", "evaluate", str(votes), "--truth", str(truth),
                   "--method", "majority", "--json")  # fmt: skip
    assert res.code == 0, res.err
    ((row,),) = [json.loads(res.out)]
    assert row["accuracy"] == 1.0 and row["mean_votes"] == 3.0
    assert res.err.splitlines() == [
        "note: 2 vote row(s) with an empty item, worker or label left out.",
        "note: 1 repeated vote(s) (same item and worker) left out; the first counts.",
        "note: 1 truth row(s) with an empty item or label left out.",
        "note: 1 item(s) of the truth file have no vote; they are not scored.",
    ]

    faces = tmp_path / "faces.csv"
    faces.write_text("item,worker,label\nx,w1,0\nx,w2,3\ny,w1,1\n")
    named = tmp_path / "named.csv"
    named.write_text("item,truth\nx,happy\ny,sad\n")
    refused = run_main(capsys, "consensus", "evaluate", str(faces), "--truth", str(named))
    assert refused.code != 0 and "No truth label is a label of the votes" in refused.err
    partly = tmp_path / "partly.csv"
    partly.write_text("item,truth\nx,0\ny,sad\n")
    res = run_main(capsys, "consensus", "evaluate", str(faces), "--truth", str(partly))
    assert res.code == 0 and "1 item(s) have a truth label no vote gives (sad)" in res.err

    folder = run_main(capsys, "consensus", "evaluate", str(tmp_path), "--truth", str(truth))
    assert folder.code != 0 and "is a folder" in folder.err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    blank = run_main(capsys, "consensus", "evaluate", str(empty), "--truth", str(truth))
    assert blank.code != 0 and "is empty" in blank.err
