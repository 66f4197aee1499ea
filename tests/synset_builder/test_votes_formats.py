"""``synset votes import --format mturk|label-studio``: crowd platforms' own result files.

The sample files follow the real layouts: Mechanical Turk's batch-result CSV
(every column MTurk writes, quoted, ``Input.*`` and ``Answer.*`` columns, a
crowd-classifier's ``Answer.category.label``) and Label Studio's JSON export of
a Choices task (tasks with ``data``, ``annotations`` holding ``completed_by``,
``lead_time``, ``was_cancelled`` and ``result`` regions of type ``choices``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from synset_builder.config import Settings
from synset_builder.crawl.store import add_image
from synset_builder.db.models import Annotator, Candidate, Consensus, Synset, Vote
from synset_builder.db.session import make_engine
from tests.conftest import CliResult

TABBY, TIGER = "n02123045", "n02123159"
MTURK_HEADER = [
    "HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime",
    "MaxAssignments", "RequesterAnnotation", "AssignmentDurationInSeconds",
    "AutoApprovalDelayInSeconds", "Expiration", "NumberOfSimilarHITs", "LifetimeInSeconds",
    "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime", "SubmitTime",
    "AutoApprovalTime", "ApprovalTime", "RejectionTime", "RequesterFeedback",
    "WorkTimeInSeconds", "LifetimeApprovalRate", "Last30DaysApprovalRate",
    "Last7DaysApprovalRate",
]  # fmt: skip


@dataclass
class World:
    """Two cat synsets; ``shared`` is one image that is a candidate of both."""

    tabby: list[int]  # candidate ids
    tiger: list[int]
    urls: dict[int, str]
    shas: dict[int, str]
    shared_sha: str
    settings: Settings

    def votes(self) -> dict[tuple[int, str], bool]:
        engine = make_engine(self.settings.database_url)
        with Session(engine) as session:
            rows = session.execute(
                select(Vote.candidate_id, Annotator.username, Vote.answer).join(
                    Annotator, Annotator.id == Vote.annotator_id
                )
            ).all()
        engine.dispose()
        return {(c, who): answer for c, who, answer in rows}

    def count(self, what: type) -> int:
        engine = make_engine(self.settings.database_url)
        with Session(engine) as session:
            n = session.scalar(select(func.count()).select_from(what))
        engine.dispose()
        return int(n or 0)


@pytest.fixture
def world(settings: Settings, photos: list[Path]) -> World:
    engine = make_engine(settings.database_url)
    urls: dict[int, str] = {}
    shas: dict[int, str] = {}
    ids: dict[str, list[int]] = {TABBY: [], TIGER: []}
    with Session(engine) as session:
        for wnid, name, lemmas in [
            (TABBY, "tabby", ["tabby", "tabby_cat"]),
            (TIGER, "tiger cat", ["tiger_cat"]),
        ]:
            synset = Synset(wnid=wnid, name=name, lemmas=lemmas, target=True)
            session.add(synset)
            session.flush()
            start = 0 if wnid == TABBY else 6
            for k, photo in enumerate(photos[start : start + 6]):
                image = add_image(session, settings.data_dir, photo.read_bytes())
                url = f"https://upload.wikimedia.org/wikipedia/commons/{wnid}/cat_{k}.jpg"
                cand = Candidate(image_id=image.id, synset_id=synset.id, source="wikimedia",
                                 url=url, rank=k)  # fmt: skip
                session.add(cand)
                session.flush()
                urls[cand.id], shas[cand.id] = url, image.sha256
                ids[wnid].append(cand.id)
        # The tabby's first image was also found for the tiger cat.
        tabby0 = ids[TABBY][0]
        first = session.get(Candidate, tabby0)
        tiger_id = session.scalar(select(Synset.id).where(Synset.wnid == TIGER))
        session.add(Candidate(image_id=first.image_id, synset_id=tiger_id, source="openverse"))
        session.commit()
    engine.dispose()
    return World(ids[TABBY], ids[TIGER], urls, shas, shas[tabby0], settings)


def mturk_file(path: Path, inputs: list[str], answers: list[str], rows: list[list[str]]) -> Path:
    """A batch-result CSV as MTurk writes it: every cell quoted, one row per assignment."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(MTURK_HEADER + inputs + answers + ["Approve", "Reject"])
    for n, row in enumerate(rows):
        worker, status, *cells = row
        writer.writerow([
            "3PKVGQTFIHBH6NZ2VSMV7Q3U7D8YRN", "3AQGTY5GDMVZ9T0PRTJ4KJ6M3OUTQB",
            "Which cat is in the picture?", "Pick the kind of cat in one photo",
            "image, cat, classification", "$0.02", "Mon Dec 07 01:02:03 PST 2026", "3",
            "BatchId:4929012;",
            "3600", "259200", "Mon Dec 14 01:02:03 PST 2026", "", "604800",
            f"3Z4AIRP3C6CMWPXNJ1W2HO8I{n:06d}", worker, status, "Mon Dec 07 01:10:00 PST 2026",
            "Mon Dec 07 01:10:14 PST 2026", "Thu Dec 10 01:10:14 PST 2026",
            "" if status != "Approved" else "Mon Dec 07 02:00:00 PST 2026",
            "" if status != "Rejected" else "Mon Dec 07 02:00:00 PST 2026", "", "14",
            "100% (41/41)", "100% (41/41)", "100% (41/41)", *cells, "", "",
        ])  # fmt: skip
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def one_line(res: CliResult) -> bool:
    return res.code != 0 and res.err.strip().count("\n") == 0 and "Traceback" not in res.err


def test_mturk_classifier_answers_are_class_names(
    cli: Callable[..., CliResult], world: World, tmp_path: Path
) -> None:
    t0, t1, t2 = world.tabby[1:4]
    g0 = world.tiger[0]
    u = world.urls
    rows = [
        ["A1EXAMPLEWORKER1", "Approved", u[t0], "Tabby"],
        ["A1EXAMPLEWORKER1", "Approved", u[t1], "Tiger cat"],
        ["A2EXAMPLEWORKER2", "Submitted", u[t0], "tabby cat"],  # a lemma, any case
        ["A2EXAMPLEWORKER2", "Approved", u[g0], "Tiger cat"],
        ["A3EXAMPLEWORKER3", "Approved", u[g0], "Tabby"],
        ["A3EXAMPLEWORKER3", "Rejected", u[t2], "Tabby"],
        ["A3EXAMPLEWORKER3", "Approved", u[t2], "None of these"],
        ["A3EXAMPLEWORKER3", "Approved", "https://example.org/never-crawled.jpg", "Tabby"],
    ]
    path = mturk_file(tmp_path / "Batch_4929012_batch_results.csv", ["Input.image_url"],
                      ["Answer.category.label"], rows)  # fmt: skip
    res = cli("votes", "import", str(path), "--format", "mturk")
    assert res.code == 0, res.err
    assert "8 rows: 5 votes added, 0 already present, 3 skipped." in res.out
    assert "1 skipped: assignment rejected on Mechanical Turk" in res.out
    assert "1 skipped: label is not a yes/no answer or a class name known here" in res.out
    assert "1 skipped: no candidate has this id, source URL or image sha256" in res.out
    # Naming the candidate's synset is a yes; naming another synset, a no.
    assert world.votes() == {
        (t0, "crowd-A1EXAMPLEWORKER1"): True,
        (t1, "crowd-A1EXAMPLEWORKER1"): False,
        (t0, "crowd-A2EXAMPLEWORKER2"): True,
        (g0, "crowd-A2EXAMPLEWORKER2"): True,
        (g0, "crowd-A3EXAMPLEWORKER3"): False,
    }
    # The same path as the web app's votes: consensus rows and the tallies follow.
    assert world.count(Consensus) >= 3
    status = json.loads(cli("status", "--json").out)
    counts = {s["wnid"]: s["counts"]["votes"] for s in status}
    assert counts[TABBY] == 3 and counts[TIGER] == 2
    again = cli("votes", "import", str(path), "--format", "mturk")
    assert "0 votes added, 5 already present" in again.out


def test_mturk_yes_no_with_named_columns(
    cli: Callable[..., CliResult], world: World, tmp_path: Path
) -> None:
    t0, t1 = world.tabby[:2]
    rows = [
        ["A1EXAMPLEWORKER1", "Approved", world.urls[t0], str(t0), "yes"],
        ["A1EXAMPLEWORKER1", "Approved", world.urls[t1], str(t1), "FALSE"],
        ["A2EXAMPLEWORKER2", "Approved", world.urls[t1], str(t1), "1"],
    ]
    cells = [r[:4] + ["x", r[4]] for r in rows]
    path = mturk_file(tmp_path / "batch.csv", ["Input.image_url", "Input.candidate"],
                      ["Answer.other", "Answer.contains"], cells)  # fmt: skip
    bad = cli("votes", "import", str(path), "-f", "mturk", "--answer-column", "nope")
    assert one_line(bad) and "Answer.nope" in bad.err and "Answer.contains" in bad.err
    res = cli("votes", "import", str(path), "-f", "mturk", "--item-column", "candidate",
              "--answer-column", "Answer.contains", "--synset", TABBY)  # fmt: skip
    assert res.code == 0, res.err
    assert "3 votes added" in res.out
    assert world.votes() == {
        (t0, "crowd-A1EXAMPLEWORKER1"): True,
        (t1, "crowd-A1EXAMPLEWORKER1"): False,
        (t1, "crowd-A2EXAMPLEWORKER2"): True,
    }


def label_studio_task(tid: int, data: dict, annotations: list[dict]) -> dict:
    return {
        "id": tid, "data": data, "annotations": annotations, "drafts": [], "predictions": [],
        "meta": {}, "created_at": "2026-12-06T21:52:49.513742Z",
        "updated_at": "2026-12-06T22:16:08.746926Z", "inner_id": tid, "total_annotations": 1,
        "cancelled_annotations": 0, "total_predictions": 0, "comment_count": 0,
        "unresolved_comment_count": 0, "last_comment_updated_at": None, "project": 7,
        "updated_by": 1, "file_upload": None, "comment_authors": [],
    }  # fmt: skip


def annotation(aid: int, who: object, choices: list[str], *, cancelled: bool = False) -> dict:
    result = [{
        "value": {"choices": choices}, "id": f"q{aid:04d}Xa", "from_name": "contains",
        "to_name": "image", "type": "choices", "origin": "manual",
    }] if choices else []  # fmt: skip
    return {
        "id": aid, "completed_by": who, "result": result, "was_cancelled": cancelled,
        "ground_truth": False, "created_at": "2026-12-06T22:16:08.728353Z",
        "updated_at": "2026-12-06T22:16:08.728378Z", "draft_created_at": None,
        "lead_time": 4.288, "prediction": {}, "result_count": 0, "unique_id": f"u-{aid}",
        "import_id": None, "last_action": None, "bulk_created": False, "task": aid // 10,
        "project": 7, "updated_by": who, "parent_prediction": None, "parent_annotation": None,
        "last_created_by": None,
    }  # fmt: skip


def test_label_studio_export(cli: Callable[..., CliResult], world: World, tmp_path: Path) -> None:
    t0, t1, t2 = world.tabby[1:4]
    sha_upload = f"/data/upload/7/5f1c2a9e-{world.shas[t2]}.jpg"  # a file Label Studio stored
    tasks = [
        label_studio_task(1, {"image": world.urls[t0]}, [
            annotation(10, 1, ["Yes"]),
            annotation(11, {"id": 2, "first_name": "", "last_name": "", "email": "b@example.org"},
                       ["No"]),
            annotation(12, 3, [], cancelled=True),
        ]),
        label_studio_task(2, {"image": world.urls[t1]}, [annotation(20, 1, ["Tiger cat"])]),
        label_studio_task(3, {"image": sha_upload}, [annotation(30, 1, ["Yes", "No"]),
                                                     annotation(31, 2, ["Yes"])]),
        label_studio_task(4, {"image": world.shared_sha}, [annotation(40, 1, ["Yes"])]),
    ]  # fmt: skip
    path = tmp_path / "project-7-at-2026-12-07-04-40-2b1e0b2c.json"
    path.write_text(json.dumps(tasks, indent=2))
    res = cli("votes", "import", str(path), "--format", "label-studio")
    assert res.code == 0, res.err
    assert "7 rows: 4 votes added, 0 already present, 3 skipped." in res.out
    assert "1 skipped: annotation cancelled in Label Studio" in res.out
    assert "1 skipped: several choices" in res.out
    assert "1 skipped: the item is a candidate of several synsets (give --synset)" in res.out
    assert world.votes() == {
        (t0, "crowd-labelstudio-1"): True,
        (t0, "crowd-labelstudio-2"): False,
        (t1, "crowd-labelstudio-1"): False,
        (t2, "crowd-labelstudio-2"): True,
    }
    engine = make_engine(world.settings.database_url)
    with Session(engine) as session:
        times = set(session.scalars(select(Vote.time_ms)))
    engine.dispose()
    assert times == {4288}
    # With --synset the shared image is the tabby's candidate.
    mine = cli("votes", "import", str(path), "-f", "label-studio", "--synset", TABBY)
    assert "1 vote added, 4 already present" in mine.out
    assert world.votes()[(world.tabby[0], "crowd-labelstudio-1")] is True
    # A candidate of another synset is named as such.
    other = cli("votes", "import", str(path), "-f", "label-studio", "--synset", TIGER)
    assert "the candidate belongs to another synset than --synset" in other.out


def test_label_studio_item_column_holds_candidate_ids(
    cli: Callable[..., CliResult], world: World, tmp_path: Path
) -> None:
    g0 = world.tiger[0]
    tasks = [label_studio_task(1, {"image": "s3://bucket/x.jpg", "candidate": g0},
                               [annotation(10, 5, ["No"])])]  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    missing = cli("votes", "import", str(path), "-f", "label-studio", "--item-column", "cand")
    assert one_line(missing) and "data.cand" in missing.err
    res = cli("votes", "import", str(path), "-f", "label-studio", "--item-column", "candidate")
    assert res.code == 0 and "1 vote added" in res.out
    assert world.votes() == {(g0, "crowd-labelstudio-5"): False}


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("mturk", '"HITId","Input.image_url","Answer.x"\r\n"H","u","yes"\r\n', "no WorkerId"),
        ("mturk", '"WorkerId","Answer.x"\r\n"A1","yes"\r\n', "no Input.* column"),
        ("label-studio", '[{"id": 1, "data": {"image": "u"}', "is not JSON"),
        ("label-studio", '{"tasks": []}', "not a list of tasks"),
        ("label-studio", '[{"image": "u", "id": 1, "choice": "Yes", "annotator": "a@b.c"}]',
         "not JSON_MIN"),
        ("label-studio", '[{"id": 1, "annotations": []}]', "no data object"),
        ("label-studio", '[{"id": 1, "data": {"image": "u"}, "annotations": [{"result": '
         '[{"type": "choices", "value": {"choices": "Yes"}}]}]}]', "without a list of choices"),
        ("label-studio", "[" * 100_000, "too deeply"),
        ("mturk", f'"WorkerId","Input.u","Answer.a"\r\n"A1","{"x" * 200_000}","yes"\r\n',
         "not a readable CSV"),
        ("csv", f'item,worker,label\n1,w,"{"x" * 200_000}"\n', "not a readable CSV"),
        ("csv", "item,worker\n1,w1\n", "needs at least 3"),
        ("tsv", "item\tworker\tlabel\n1\tw\tyes\n", "Unknown vote file format"),
    ],
)  # fmt: skip
def test_malformed_files_write_nothing(
    cli: Callable[..., CliResult], world: World, tmp_path: Path,
    fmt: str, content: str, message: str,
) -> None:  # fmt: skip
    path = tmp_path / "bad"
    path.write_text(content)
    res = cli("votes", "import", str(path), "--format", fmt)
    assert one_line(res) and message in res.err, res.err
    assert world.count(Vote) == 0 and world.count(Annotator) == 0


def test_a_bad_row_late_in_the_file_writes_nothing(
    cli: Callable[..., CliResult], world: World, tmp_path: Path
) -> None:
    good = [["A1EXAMPLEWORKER1", "Approved", world.urls[c], "Tabby"] for c in world.tabby]
    path = mturk_file(tmp_path / "batch.csv", ["Input.image_url"], ["Answer.category.label"],
                      good)  # fmt: skip
    path.write_text(path.read_text() + '"3PKV","short row"\r\n')
    res = cli("votes", "import", str(path), "-f", "mturk")
    assert one_line(res) and "has 2 columns" in res.err
    assert world.count(Vote) == 0 and world.count(Annotator) == 0


def test_nothing_matched_exits_non_zero_and_writes_nothing(
    cli: Callable[..., CliResult], world: World, tmp_path: Path
) -> None:
    path = tmp_path / "votes.csv"
    path.write_text("item,worker,label\n999999,w1,yes\nhttps://example.org/a.jpg,w2,no\n"
                    f"{'ab' * 32},w3,yes\n")  # fmt: skip
    res = cli("votes", "import", str(path))
    assert one_line(res) and "No vote in" in res.err and "nothing was imported" in res.err
    assert world.count(Vote) == 0 and world.count(Annotator) == 0


def test_a_large_batch_matches_urls_beyond_one_query_chunk(
    cli: Callable[..., CliResult], world: World, tmp_path: Path
) -> None:
    """Past 500 distinct URLs the import scans the candidates once instead of per chunk."""
    known = [["A1EXAMPLEWORKER1", "Approved", world.urls[c], "Tabby"] for c in world.tabby]
    unknown = [
        [f"A{n % 7}EXAMPLEWORKER", "Approved", f"https://example.org/other/{n}.jpg", "Tabby"]
        for n in range(600)
    ]
    path = mturk_file(tmp_path / "batch.csv", ["Input.image_url"], ["Answer.category.label"],
                      unknown[:300] + known + unknown[300:])  # fmt: skip
    res = cli("votes", "import", str(path), "-f", "mturk")
    assert res.code == 0, res.err
    assert "606 rows: 6 votes added" in res.out
    assert "600 skipped: no candidate has this id, source URL or image sha256" in res.out
    assert set(world.votes()) == {(c, "crowd-A1EXAMPLEWORKER1") for c in world.tabby}


def test_odd_ids_and_taken_names_skip_rows_not_the_file(
    cli: Callable[..., CliResult], world: World, tmp_path: Path
) -> None:
    """A 30-digit id is no candidate id (PostgreSQL's integers would overflow), and a
    worker whose ``crowd-ID`` name a staff account holds loses its rows, not the file."""
    engine = make_engine(world.settings.database_url)
    with Session(engine) as session:
        session.add(Annotator(username="crowd-W9", role="curator"))
        session.commit()
    engine.dispose()
    t0 = world.tabby[0]
    path = tmp_path / "votes.csv"
    path.write_text(f"item,worker,label\n{'9' * 30},W1,yes\n{t0},W9,yes\n{t0},W1,no\n")
    res = cli("votes", "import", str(path))
    assert res.code == 0, res.err
    assert "3 rows: 1 vote added" in res.out
    assert "1 skipped: no candidate has this id, source URL or image sha256" in res.out
    assert "1 skipped: the worker's account name belongs to a staff account" in res.out
    assert world.votes() == {(t0, "crowd-W1"): False}
