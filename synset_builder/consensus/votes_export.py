"""``synset votes export``: every stored vote as the long ``task,worker,label`` table.

That table is crowd-kit's whole data contract (``MajorityVote().fit_predict(df)``,
``DawidSkene``, ``GLAD``, ...) and what ``synset consensus evaluate`` reads, so a
curator can try other aggregators on the real votes without glue. The task is
the candidate id (the key ``votes import`` and ``gold add`` read too), the
worker the account name, the label ``1`` (yes) or ``0`` (no). Rows come in the order the votes
arrived (vote id), because the dynamic rule's replay in ``evaluate`` depends on
it. Gold answers, when asked, go to a second file ``task,true_label`` beside
the first: crowd-kit keeps ground truth apart from the labels, and ``evaluate``
takes it as ``--truth``.

The rows are streamed from the database and written to a temporary file that
replaces OUT only when complete, so an interrupted export never leaves a short
file behind that looks whole.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Integer, Select, select
from sqlalchemy.orm import Session

from synset_builder.db.models import Annotator, Candidate, Gold, Synset, Vote
from synset_builder.errors import InvalidInput, NotFound

BATCH = 10_000


@dataclass(frozen=True)
class ExportResult:
    votes: int
    tasks: int
    workers: int
    gold: int = 0
    gold_path: Path | None = None


def gold_path_for(out: Path) -> Path:
    """``votes.csv`` -> ``votes.gold.csv``, beside it."""
    return out.with_name(f"{out.stem}.gold{out.suffix or '.csv'}")


def _write(
    path: Path, header: list[str], rows: Select, session: Session
) -> tuple[int, set[object], set[object]]:
    """Stream ``rows`` into ``path`` atomically; return (rows, distinct firsts, seconds)."""
    tmp = path.with_name(f".{path.name}.part")
    n, firsts, seconds = 0, set[object](), set[object]()
    try:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for row in session.execute(rows.execution_options(yield_per=BATCH)):
                writer.writerow(row)
                n += 1
                firsts.add(row[0])
                seconds.add(row[1])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n, firsts, seconds


def export_votes(
    session: Session, out: Path, *, wnid: str | None = None, gold: bool = False
) -> ExportResult:
    """Write the votes (of ``wnid``'s candidates, or all) to ``out``; gold beside it."""
    if out.is_dir():
        raise InvalidInput(f"{out} is a folder; give the CSV file to write.")
    if not out.parent.is_dir():
        raise NotFound(f"The folder {out.parent} does not exist.")
    votes = (
        select(Vote.candidate_id, Annotator.username, Vote.answer.cast(Integer))
        .join(Annotator, Annotator.id == Vote.annotator_id)
        .order_by(Vote.id)
    )
    truth = select(Gold.candidate_id, Gold.answer.cast(Integer)).order_by(Gold.candidate_id)
    if wnid is not None:
        synset_id = session.scalar(select(Synset.id).where(Synset.wnid == wnid))
        if synset_id is None:
            raise NotFound(f"There is no synset {wnid}; add it with 'synset hierarchy add'.")
        votes = votes.join(Candidate, Candidate.id == Vote.candidate_id).where(
            Candidate.synset_id == synset_id
        )
        truth = truth.join(Candidate, Candidate.id == Gold.candidate_id).where(
            Candidate.synset_id == synset_id
        )
    n, tasks, workers = _write(out, ["task", "worker", "label"], votes, session)
    if not gold:
        return ExportResult(n, len(tasks), len(workers))
    where = gold_path_for(out)
    n_gold, _, _ = _write(where, ["task", "true_label"], truth, session)
    return ExportResult(n, len(tasks), len(workers), n_gold, where)
