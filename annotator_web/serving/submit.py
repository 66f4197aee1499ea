"""A submit: a page's answers recorded (votes, "unsure" skips), leases released, the
page counted.

Shared by the HTML form and the JSON API (``POST /api/votes``). One transaction:
the answers, the consensus update they cause (``live.after_votes``) and the
annotator's page count commit together or not at all. The statements come built
once per backend (:class:`~annotator_web.serving.statements.Statements`, ``sql``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from annotator_web.serving.statements import Statements
from annotator_web.serving.submit_sql import UNSURE_COLUMNS
from synset_builder.config import Settings
from synset_builder.consensus import live
from synset_builder.db.models import Annotator, utcnow
from synset_builder.db.session import committed
from synset_builder.errors import InvalidInput

T = TypeVar("T")


class Voter(NamedTuple):
    """What recording a page of votes needs to know of its annotator (:func:`record_votes`)."""

    id: int
    worker_id: str | None
    disabled: bool = False
    session_version: int = 0


@dataclass(frozen=True)
class VoteResult:
    accepted: int
    already: int
    refused: list[int]


def record_votes(
    session: Session,
    sql: Statements,
    *,
    annotator: Annotator | Voter,
    votes: Sequence[tuple[int, bool]],
    unsure: Sequence[int] = (),
    elapsed_ms: int | None = None,
    cfg: Settings,
) -> VoteResult:
    """Record the answers of one page; harmless to repeat (back button, retry).

    A vote counts only for an item leased to this annotator that still needs votes
    (gold items always do); anything else is refused and nothing is written for it.
    """
    answers = dict(votes)
    ids = sorted(set(answers) | set(unsure))
    if len(ids) > 1000:
        raise InvalidInput("At most 1000 votes per request.")
    if not ids:
        return VoteResult(accepted=0, already=0, refused=[])
    me, now = annotator.id, utcnow()
    conn = session.connection()
    held, done, votable = set(), set(), set()
    for cid, is_held, is_done, is_votable in conn.execute(sql.answer_state, {"ids": ids, "me": me}):
        for flag, into in ((is_held, held), (is_done, done), (is_votable, votable)):
            if flag:
                into.add(cid)
    fresh = [i for i in ids if i in answers and i in held and i in votable and i not in done]
    skipped = [i for i in ids if i not in answers and i in held]
    refused = [i for i in ids if i not in done and i not in fresh and i not in skipped]
    per_item = elapsed_ms // max(1, len(fresh) + len(skipped)) if elapsed_ms else None
    rows = [
        {"candidate_id": i, "annotator_id": me, "answer": answers[i], "time_ms": per_item,
         "created_at": now}
        for i in fresh
    ]  # fmt: skip
    if skipped:
        skips = [{"candidate_id": i, "annotator_id": me, "created_at": now} for i in skipped]
        conn.execute(sql.insert_unsure, sql.rows.params(skips, UNSURE_COLUMNS))
    recorded, pages, code = sql.write_answers(conn, rows, [*fresh, *skipped], me, now)
    if recorded:
        config = cfg.consensus
        live.after_votes(
            session, recorded, config=config, voter=me, defer_reopen=True, sql=sql.live
        )
    refits = session.info.get("refits")
    if refits is not None and recorded:  # the web app's own refits (consensus/refit.py)
        refits.counted(session, len(recorded))
    if recorded:
        _counted(session, sql, annotator, pages, code, cfg)
    return VoteResult(accepted=len(recorded), already=len(done), refused=refused)


def submit_page(session: Session, sql: Statements, cfg: Settings, work: Callable[[], T]) -> T:
    """Run and commit a page's writes (:func:`record_votes`, or an undo), run again
    from the start if PostgreSQL aborted them to break a deadlock
    (:func:`~synset_builder.db.session.committed`); then decide again, in
    transactions of their own, the items of an annotator the page excluded."""
    result = committed(session, work)
    live.reopen_deferred(session, cfg.consensus, sql=sql.live)
    return result


def _counted(
    session: Session,
    sql: Statements,
    annotator: Annotator | Voter,
    pages: int | None,
    code: str | None,
    cfg: Settings,
) -> None:
    """Crowd workers get their completion code after enough pages."""
    if annotator.worker_id and code is None and pages is not None and pages >= cfg.crowd.pages:
        code = secrets.token_hex(5).upper()
        session.connection().execute(sql.set_completion_code, {"me": annotator.id, "code": code})
    if isinstance(annotator, Annotator):
        # The row was written in Core: tell the loaded object without another query.
        set_committed_value(annotator, "pages_done", pages)
        set_committed_value(annotator, "completion_code", code)
