"""Readers for vote files from crowd platforms, one per format, picked by name.

Each platform lays its results out its own way (a spreadsheet's three columns,
Mechanical Turk's batch-result CSV, Label Studio's JSON export); each reader
turns one into the same rows (where, item, worker, answer) so that matching
items, reading answers and writing votes happen once, in ``votes_import``.

A reader parses the whole file before the database is touched: a malformed file
raises :class:`InvalidInput` (one line) and nothing is written. Rows the
platform itself marks as not to be used (a rejected MTurk assignment, a
cancelled Label Studio annotation) come back with a ``skip`` reason, so the
import counts them instead of losing them silently.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from synset_builder.consensus.crowd_files import read_rows
from synset_builder.errors import InvalidInput, NotFound

MTURK_WORKER = "WorkerId"
LABEL_STUDIO_WORKER = "labelstudio-"  # worker id prefix: Label Studio user ids are numbers
MAX_LEAD_S = 86_400.0  # a lead time past a day is a tab left open, not time spent voting


@dataclass(frozen=True)
class VoteRecord:
    """One answer as the file gives it; ``where`` names it in messages."""

    where: str
    item: str
    worker: str
    answer: str
    time_ms: int | None = None
    skip: str | None = None  # the platform's own reason not to use it


class VoteReader(Protocol):
    def __call__(
        self, path: Path, *, item_column: str | None, answer_column: str | None
    ) -> list[VoteRecord]: ...


def _text(path: Path) -> str:
    if not path.is_file():
        raise NotFound(f"The file {path} does not exist.")
    return path.read_text(encoding="utf-8-sig", errors="replace")


def read_csv(path: Path, *, item_column: str | None, answer_column: str | None) -> list[VoteRecord]:
    """``item,worker,label`` by position, the first row a header (as ``evaluate`` reads)."""
    if item_column or answer_column:
        raise InvalidInput(
            "--item-column and --answer-column name columns of --format mturk or label-studio; "
            "a csv file is read by position (item, worker, label)."
        )
    try:
        rows = read_rows(path, 3)
    except csv.Error as err:  # a field past the csv module's size limit, say
        raise InvalidInput(f"{path} is not a readable CSV file: {err}.") from None
    return [
        VoteRecord(f"line {line}", item, worker, label)
        for line, (item, worker, label) in enumerate(rows, start=2)
    ]


def _pick(header: list[str], prefix: str, wanted: str | None, path: Path, option: str) -> int:
    """The index of the ``prefix`` column the user named (with or without the prefix),
    or of the first one."""
    columns = [k for k, name in enumerate(header) if name.startswith(prefix)]
    if not columns:
        raise InvalidInput(f"{path} has no {prefix}* column; is it a Mechanical Turk batch result?")
    if wanted is None:
        return columns[0]
    name = wanted if wanted.startswith(prefix) else prefix + wanted
    for k in columns:
        if header[k] == name:
            return k
    names = ", ".join(header[k] for k in columns)
    raise InvalidInput(f"{path} has no column {name} for {option}; it has {names}.")


def read_mturk(
    path: Path, *, item_column: str | None, answer_column: str | None
) -> list[VoteRecord]:
    """A Mechanical Turk batch-result CSV: one row per assignment.

    The worker is ``WorkerId``; the item is an ``Input.*`` column (the HIT's
    input, usually the image URL) and the answer an ``Answer.*`` column. A
    rejected assignment is reported, not counted: the requester judged that work
    unusable.
    """
    try:
        return _mturk_rows(path, item_column, answer_column)
    except csv.Error as err:  # a field past the csv module's size limit, say
        raise InvalidInput(f"{path} is not a readable CSV file: {err}.") from None


def _mturk_rows(path: Path, item_column: str | None, answer_column: str | None) -> list[VoteRecord]:
    reader = csv.reader(_text(path).splitlines())
    header = [cell.strip() for cell in next(reader, [])]
    if MTURK_WORKER not in header:
        raise InvalidInput(
            f"{path} has no {MTURK_WORKER} column; is it a Mechanical Turk batch result?"
        )
    worker = header.index(MTURK_WORKER)
    item = _pick(header, "Input.", item_column, path, "--item-column")
    answer = _pick(header, "Answer.", answer_column, path, "--answer-column")
    status = header.index("AssignmentStatus") if "AssignmentStatus" in header else None
    out = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InvalidInput(
                f"Line {line} of {path} has {len(row)} columns; its header has {len(header)}."
            )
        rejected = status is not None and row[status].strip().lower() == "rejected"
        out.append(
            VoteRecord(
                f"line {line}",
                row[item].strip(),
                row[worker].strip(),
                row[answer].strip(),
                skip="assignment rejected on Mechanical Turk" if rejected else None,
            )
        )
    if not out:
        raise InvalidInput(f"The file {path} has no data rows after its header.")
    return out


def _bad(path: Path, where: str, what: str) -> InvalidInput:
    return InvalidInput(f"{path} is not a Label Studio JSON export: {where} {what}.")


def _lead_ms(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value < MAX_LEAD_S:
        return None
    return round(value * 1000)


def _annotator(value: Any) -> str | None:
    """``completed_by`` is a user id, or (older exports) a dict holding one."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return f"{LABEL_STUDIO_WORKER}{value}"


def _choices(path: Path, where: str, result: Any, answer_column: str | None) -> list[str] | None:
    """The choices of the annotation's Choices control (``from_name`` when named),
    or None when it has none."""
    if not isinstance(result, list):
        raise _bad(path, where, "has a result that is not a list")
    for region in result:
        if not isinstance(region, dict):
            raise _bad(path, where, "has a result region that is not an object")
        if region.get("type") != "choices":
            continue
        if answer_column is not None and region.get("from_name") != answer_column:
            continue
        value = region.get("value")
        chosen = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            raise _bad(path, where, "has a choices region without a list of choices")
        return chosen
    return None


def _item(data: dict[str, Any], item_column: str | None) -> tuple[str, str | None]:
    """(the data key, its value as text) of the task's item: the named key, else
    ``image``, else the first key."""
    key = item_column or ("image" if "image" in data else next(iter(data), ""))
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return key, None
    return key, str(value).strip()


def _label_studio_tasks(path: Path) -> list[Any]:
    """The export's list of tasks; a file that is not one is a clear user error."""
    try:
        tasks = json.loads(_text(path))
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{path} is not JSON: {err.msg} at line {err.lineno}.") from None
    except RecursionError:
        raise InvalidInput(f"{path} nests its JSON too deeply to be an export.") from None
    if not isinstance(tasks, list):
        raise InvalidInput(f"{path} is not a Label Studio JSON export: it is not a list of tasks.")
    return tasks


def _annotation(
    path: Path,
    at: str,
    note: dict[str, Any],
    item: str | None,
    key: str,
    answer_column: str | None,
) -> VoteRecord:
    """One annotation as a vote, or as a record that says why it is skipped."""
    chosen = _choices(path, at, note.get("result", []), answer_column)
    worker = _annotator(note.get("completed_by"))
    skip = (
        "annotation cancelled in Label Studio" if note.get("was_cancelled")
        else f"task has no data.{key}" if item is None
        else "no annotator" if worker is None
        else "no choice" if not chosen
        else "several choices" if len(chosen) > 1
        else None
    )  # fmt: skip
    return VoteRecord(
        at,
        item or "",
        worker or "",
        chosen[0] if chosen and len(chosen) == 1 else "",
        time_ms=_lead_ms(note.get("lead_time")),
        skip=skip,
    )


def read_label_studio(
    path: Path, *, item_column: str | None, answer_column: str | None
) -> list[VoteRecord]:
    """Label Studio's JSON export (not JSON_MIN) of a task with a Choices control.

    One vote per annotation: the worker is ``completed_by`` (a Label Studio user
    id, read as worker ``labelstudio-ID``), the item the task's ``data`` value
    (``--item-column``, default ``image``: an image URL, a candidate id or a
    sha256), the answer the single choice (``--answer-column`` picks the Choices
    control by its ``from_name`` when the task has several). ``lead_time`` is the
    vote's time. Cancelled (skipped) annotations are reported, not counted.
    """
    tasks = _label_studio_tasks(path)
    out: list[VoteRecord] = []
    named = item_column is None
    for k, task in enumerate(tasks):
        tid = task.get("id", k) if isinstance(task, dict) else k
        where = f"task {tid}"
        if not isinstance(task, dict):
            raise _bad(path, where, "is not an object")
        annotations = task.get("annotations", task.get("completions"))  # "completions": < 1.0
        if not isinstance(annotations, list):
            raise _bad(path, where, "has no annotations list (export as JSON, not JSON_MIN)")
        if not isinstance(task.get("data"), dict):
            raise _bad(path, where, "has no data object")
        key, item = _item(task["data"], item_column)
        named = named or key in task["data"]
        for n, note in enumerate(annotations):
            if not isinstance(note, dict):
                raise _bad(path, where, "has an annotation that is not an object")
            at = f"{where} annotation {note.get('id', n)}"
            out.append(_annotation(path, at, note, item, key, answer_column))
    if not named:
        raise InvalidInput(f"No task in {path} has data.{item_column} (--item-column).")
    if not out:
        raise InvalidInput(f"{path} holds no annotations.")
    return out


READERS: dict[str, VoteReader] = {
    "csv": read_csv,
    "mturk": read_mturk,
    "label-studio": read_label_studio,
}


def read_votes(
    path: Path,
    fmt: str = "csv",
    *,
    item_column: str | None = None,
    answer_column: str | None = None,
) -> list[VoteRecord]:
    reader = READERS.get(fmt)
    if reader is None:
        raise InvalidInput(f"Unknown vote file format {fmt!r}; use one of {', '.join(READERS)}.")
    return reader(path, item_column=item_column, answer_column=answer_column)
