"""Crowd vote and truth files as ``synset consensus evaluate`` and ``votes import`` read them.

Read by position, not by header name: a vote file's first three columns are item,
worker, label (crowd-kit's ``question,worker,answer`` files work as they are), a
truth file's first two item, truth; the first row is a header; comma, semicolon
or tab. Labels that are all yes/no words are one binary answer, anything else is
multi-class by name. Rows a score cannot use are left out *and said*: a new user
whose truth file says ``happy`` where the votes say ``0`` must not read an
accuracy of 0 as the crowd's.
"""

from __future__ import annotations

import csv
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

from synset_builder.consensus.base import VoteRow
from synset_builder.errors import InvalidInput, NotFound

YES = {"1", "yes", "y", "true", "t"}
NO = {"0", "no", "n", "false", "f"}


def read_rows(path: Path, width: int) -> list[list[str]]:
    """Rows after the header, each cut to ``width`` stripped cells; one-line errors."""
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give the CSV file.")
    if not path.is_file():
        raise NotFound(f"The file {path} does not exist.")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if not text.strip():
        raise InvalidInput(f"The file {path} is empty.")
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
                f"Line {line} of {path} has {len(row)} column{'s' * (len(row) != 1)}; it "
                f"needs at least {width}."
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


def clean(
    votes: list[list[str]], truth_rows: list[list[str]]
) -> tuple[list[list[str]], dict[str, str], list[str]]:
    """The votes and truth a score can use, and one note per kind of row left out.

    A vote without an item, worker or label is no vote (an empty label would be a
    class of its own); a worker's second vote on an item is a repeat, which would
    count them twice (the first stands, as ``votes import`` keeps the stored one).
    Truth without a vote cannot be scored and is said so, not dropped unseen.
    """
    notes = []
    kept, seen, empty, repeats = [], set(), 0, 0
    for row in votes:
        if not all(row):
            empty += 1
        elif (row[0], row[1]) in seen:
            repeats += 1
        else:
            seen.add((row[0], row[1]))
            kept.append(row)
    if empty:
        notes.append(f"{empty} vote row(s) with an empty item, worker or label left out.")
    if repeats:
        notes.append(
            f"{repeats} repeated vote(s) (same item and worker) left out; the first counts."
        )
    truth = {item: label for item, label in truth_rows if item and label}
    if len(truth) < len(truth_rows):
        notes.append(
            f"{len(truth_rows) - len(truth)} truth row(s) with an empty item or label left out."
        )
    voted = {row[0] for row in kept}
    unvoted = sum(1 for item in truth if item not in voted)
    if unvoted:
        notes.append(f"{unvoted} item(s) of the truth file have no vote; they are not scored.")
    return kept, truth, notes


def check_labels(votes: Sequence[VoteRow], truth: Mapping[Hashable, Hashable]) -> list[str]:
    """Refuse truth no vote could match (``happy`` against votes ``0``-``3``: every
    method would score 0); note the items whose truth no vote names."""
    labels = {label for _, _, label in votes}
    voted = {item for item, _, _ in votes}
    alien = sorted({str(t) for item, t in truth.items() if item in voted and t not in labels})
    if not alien:
        return []
    if not any(t in labels for item, t in truth.items() if item in voted):
        raise InvalidInput(
            f"No truth label is a label of the votes (truth: {', '.join(alien[:5])}; votes: "
            f"{', '.join(sorted(map(str, labels))[:5])})."
        )
    n = sum(1 for item, t in truth.items() if item in voted and t not in labels)
    return [f"{n} item(s) have a truth label no vote gives ({', '.join(alien[:5])}); "
            "no method can get them right."]  # fmt: skip
