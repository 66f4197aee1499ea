"""``synset consensus evaluate``: compare the methods on any crowd vote file.

Vote files are read by position, not by header name: the first three columns are
item, worker, label (so ``question,worker,answer`` files from crowd-kit's data
sets work as they are); the truth file's first two are item, truth. The first
row of each file is a header. Labels that are all of 0/1, yes/no, true/false
are read as one binary answer; anything else is multi-class by name.

Majority and Dawid-Skene see every vote (or each item's first ``max_votes``);
``dynamic`` replays the votes in file order and stops serving an item once it is
decided, so its ``mean_votes`` is what the dynamic rule would have paid.
"""

from __future__ import annotations

import csv
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

from synset_builder.consensus import METHODS
from synset_builder.consensus.base import VoteRow
from synset_builder.consensus.dynamic import DynamicConfig, DynamicConsensus
from synset_builder.errors import InvalidInput, NotFound

YES = {"1", "yes", "y", "true", "t"}
NO = {"0", "no", "n", "false", "f"}


@dataclass(frozen=True)
class Evaluation:
    method: str
    accuracy: float
    mean_votes: float
    items: int  # items with truth that got at least one vote

    def as_json(self) -> dict[str, object]:
        return {"method": self.method, "accuracy": self.accuracy, "mean_votes": self.mean_votes}


def read_rows(path: Path, width: int) -> list[list[str]]:
    """Rows after the header, each cut to ``width`` stripped cells; one-line errors."""
    if not path.is_file():
        raise NotFound(f"The file {path} does not exist.")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))[1:]
    out = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < width:
            raise InvalidInput(
                f"Line {line} of {path} has {len(row)} columns; it needs at least {width}."
            )
        out.append([cell.strip() for cell in row[:width]])
    if not out:
        raise InvalidInput(f"The file {path} has no data rows after its header.")
    return out


def binary_label(label: str) -> bool | None:
    low = label.lower()
    return True if low in YES else False if low in NO else None


def normalise(votes: list[list[str]], truth: dict[str, str]) -> tuple[list[VoteRow], dict]:
    """Read labels as booleans when every vote label is a yes/no word, else keep names."""
    if all(binary_label(label) is not None for _, _, label in votes):
        rows: list[VoteRow] = [(i, w, binary_label(label)) for i, w, label in votes]
        return rows, {item: binary_label(t) for item, t in truth.items()}
    return [(i, w, label) for i, w, label in votes], truth


def cap_votes(votes: Sequence[VoteRow], max_votes: int | None) -> list[VoteRow]:
    """Each item's first ``max_votes`` votes, in file order."""
    if max_votes is None:
        return list(votes)
    seen: dict[Hashable, int] = {}
    out = []
    for row in votes:
        seen[row[0]] = seen.get(row[0], 0) + 1
        if seen[row[0]] <= max_votes:
            out.append(row)
    return out


def evaluate(
    votes_path: Path,
    truth_path: Path,
    *,
    methods: Sequence[str] = ("majority", "dawid-skene", "dynamic"),
    max_votes: int | None = None,
    config: DynamicConfig | None = None,
) -> list[Evaluation]:
    """Accuracy on the items with truth, and mean votes used per item, per method."""
    for name in methods:
        if name not in METHODS:
            raise InvalidInput(f"Unknown method {name!r}; choose from {', '.join(METHODS)}.")
    if max_votes is not None and max_votes < 1:
        raise InvalidInput("--max-votes must be at least 1.")
    raw_truth = {item: label for item, label in read_rows(truth_path, 2)}
    votes, truth = normalise(read_rows(votes_path, 3), raw_truth)
    cfg = config or DynamicConfig()
    if max_votes is not None:
        cfg = DynamicConfig(**{**cfg.__dict__, "max_votes": max_votes})
    results = []
    for name in methods:
        if name == "dynamic":
            model = DynamicConsensus(config=cfg).replay(votes)
            used = model.used_
        else:
            taken = cap_votes(votes, max_votes)
            model = METHODS[name](cfg).fit(taken)
            used = {}
            for item, _, _ in taken:
                used[item] = used.get(item, 0) + 1
        scored = [item for item in truth if item in model.labels_]
        if not scored:
            raise InvalidInput("No item of the truth file has a vote in the vote file.")
        correct = sum(model.labels_[item] == truth[item] for item in scored)
        results.append(
            Evaluation(
                method=name,
                accuracy=correct / len(scored),
                mean_votes=sum(used.values()) / max(len(used), 1),
                items=len(scored),
            )
        )
    return results
