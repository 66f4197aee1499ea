"""``synset votes export``: the long ``task,worker,label`` table that crowd-kit and
``synset consensus evaluate`` read as they are."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene, MajorityVote
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synset_builder.accounts import add_user
from synset_builder.config import Settings
from synset_builder.consensus.votes_import import STAFF
from synset_builder.db.models import Annotator, Vote
from synset_builder.db.session import make_engine
from tests.conftest import CliResult
from tests.consensus_data import make_synset

WNID, OTHER = "n02123045", "n02084071"
N_ITEMS = 24


@pytest.fixture
def voted(
    cli: Callable[..., CliResult], settings: Settings, photos: list[Path], tmp_path: Path
) -> dict[int, bool]:
    """Votes on two synsets, imported; returns the first synset's truth by candidate id.

    Three careful workers, each wrong on every ninth item (a different ninth each),
    and one who always says yes; even items are true. Gold marks every fourth item.
    """
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        mine = [c.id for c in make_synset(session, WNID, photos, settings.data_dir, N_ITEMS)]
        other = [c.id for c in make_synset(session, OTHER, photos[N_ITEMS:], settings.data_dir, 4)]
        session.commit()
    engine.dispose()
    truth = {cid: k % 2 == 0 for k, cid in enumerate(mine)}
    lines = ["item,worker,label"]
    for k, (cid, answer) in enumerate(truth.items()):
        for n, who in enumerate(["careful1", "careful2", "careful3"]):
            said = answer != ((k + n) % 9 == 0)
            lines.append(f"{cid},{who},{'yes' if said else 'no'}")
        lines.append(f"{cid},always_yes,yes")
    lines += [f"{cid},careful1,no" for cid in other]
    path = tmp_path / "votes.csv"
    path.write_text("\n".join(lines) + "\n")
    assert cli("votes", "import", str(path)).code == 0
    gold = tmp_path / "gold.csv"
    gold.write_text("item,label\n" + "".join(
        f"{cid},{'yes' if answer else 'no'}\n" for k, (cid, answer) in enumerate(truth.items())
        if k % 4 == 0
    ))  # fmt: skip
    assert cli("gold", "add", str(gold)).code == 0
    return truth


def test_crowd_kit_aggregates_the_export(
    cli: Callable[..., CliResult], settings: Settings, voted: dict[int, bool], tmp_path: Path
) -> None:
    out = tmp_path / "answers.csv"
    res = cli("votes", "export", "--synset", WNID, "--gold", str(out))
    assert res.code == 0, res.err
    assert f"{4 * N_ITEMS} votes on {N_ITEMS} items by 4 workers" in res.out
    assert f"{N_ITEMS // 4} gold answers" in res.out

    df = pd.read_csv(out)
    assert list(df.columns) == ["task", "worker", "label"]
    assert set(df["task"]) == set(voted)  # the other synset's votes stay out
    majority = MajorityVote().fit_predict(df)
    assert all(bool(majority[cid]) == answer for cid, answer in voted.items())
    ds = DawidSkene(n_iter=100).fit(df)
    assert all(bool(ds.labels_[cid]) == answer for cid, answer in voted.items())
    # The always-yes worker's confusion matrix shows it: "yes" whatever the truth.
    # (errors_: rows (worker, given label), columns the true label.)
    says_yes = ds.errors_.loc[("crowd-always_yes", 1)]
    assert says_yes[0] > 0.9 and says_yes[1] > 0.9

    gt = pd.read_csv(tmp_path / "answers.gold.csv").set_index("task")["true_label"]
    assert len(gt) == N_ITEMS // 4
    assert all(bool(gt[cid]) == voted[cid] for cid in gt.index)
    assert (majority[gt.index] == gt).all()

    # Rows come in arrival order (vote id): the dynamic replay depends on it.
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        stored = session.execute(
            select(Vote.candidate_id, Annotator.username)
            .join(Annotator, Annotator.id == Vote.annotator_id)
            .where(Vote.candidate_id.in_(list(voted)))
            .order_by(Vote.id)
        ).all()
    engine.dispose()
    assert list(zip(df["task"], df["worker"], strict=True)) == [tuple(r) for r in stored]


def test_evaluate_reads_the_export(
    cli: Callable[..., CliResult], voted: dict[int, bool], tmp_path: Path
) -> None:
    out = tmp_path / "all.csv"
    res = cli("votes", "export", str(out), "--gold")
    assert res.code == 0, res.err
    with out.open(newline="") as fh:
        assert sum(1 for _ in csv.reader(fh)) == 1 + 4 * N_ITEMS + 4
    run = cli("consensus", "evaluate", str(out), "--truth", str(tmp_path / "all.gold.csv"),
              "--method", "majority", "--method", "dawid-skene", "--json")  # fmt: skip
    assert run.code == 0, run.err
    scores = {r["method"]: r for r in json.loads(run.out)}
    assert scores["majority"]["items"] == N_ITEMS // 4
    assert scores["majority"]["accuracy"] == 1.0 and scores["dawid-skene"]["accuracy"] == 1.0


def test_export_refuses_bad_targets(
    cli: Callable[..., CliResult], voted: dict[int, bool], tmp_path: Path
) -> None:
    missing = cli("votes", "export", str(tmp_path / "no" / "such" / "v.csv"))
    assert missing.code != 0 and "does not exist" in missing.err
    folder = cli("votes", "export", str(tmp_path))
    assert folder.code != 0 and "is a folder" in folder.err
    unknown = cli("votes", "export", str(tmp_path / "v.csv"), "--synset", "n00000000")
    assert unknown.code != 0 and "no synset n00000000" in unknown.err
    assert not (tmp_path / "v.csv").exists()


def test_an_export_imported_again_adds_nothing(
    cli: Callable[..., CliResult], settings: Settings, voted: dict[int, bool], tmp_path: Path
) -> None:
    """The account names the export writes are the accounts again: a crowd account's
    votes are present already (not a new ``crowd-crowd-ID`` voting twice), and a staff
    account's are counted where they are and never added from a file."""
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        staff = add_user(session, "curator_kim", "annotator", "a long passphrase 1")
        first, second = sorted(voted)[:2]
        session.add(Vote(candidate_id=first, annotator_id=staff.id, answer=True))
        session.commit()
        accounts = session.scalar(select(func.count(Annotator.id)))
        votes = session.scalar(select(func.count(Vote.id)))
    out = tmp_path / "all.csv"
    assert cli("votes", "export", str(out)).code == 0
    rows = out.read_text().splitlines()
    assert f"{first},curator_kim,1" in rows and any(",crowd-careful1," in r for r in rows)
    # The staff account on an item it never voted on: a file cannot speak for it.
    out.write_text("\n".join([*rows, f"{second},curator_kim,0"]) + "\n")

    again = cli("votes", "import", str(out))
    assert again.code == 0, again.err
    summary, reason = again.out.splitlines()
    n = len(rows)
    assert summary == f"{n} rows: 0 votes added, {n - 1} already present, 1 skipped."
    assert reason.strip() == f"1 skipped: {STAFF}"
    with Session(engine) as session:
        assert session.scalar(select(func.count(Annotator.id))) == accounts
        assert session.scalar(select(func.count(Vote.id))) == votes
    engine.dispose()
