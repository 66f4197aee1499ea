"""Recording a page's answers: votes, "unsure" skips, leases released, the page counted.

Shared by the HTML form and the JSON API (``POST /api/votes``). One transaction:
the answers, the consensus update they cause (``queue.after_votes``) and the
annotator's page count commit together or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from annotator_web import queue
from annotator_web import serving_sql as sql
from annotator_web.deps import Voter
from annotator_web.tasks import now_utc
from synset_builder.config import Settings
from synset_builder.consensus import live
from synset_builder.db.bulk import rows_params
from synset_builder.db.models import Annotator
from synset_builder.db.session import committed, on_postgresql
from synset_builder.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True)
class VoteResult:
    accepted: int
    already: int
    refused: list[int]


def record_votes(
    session: Session,
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
    me, now, postgresql = annotator.id, now_utc(), on_postgresql(session)
    conn = session.connection()
    held, done, votable = set(), set(), set()
    for cid, is_held, is_done, is_votable in conn.execute(
        sql.answer_state(postgresql), {"ids": ids, "me": me}
    ):
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
        conn.execute(
            sql.insert_unsure(postgresql), rows_params(skips, sql.UNSURE_COLUMNS, postgresql)
        )
    released = [*fresh, *skipped]
    if postgresql:
        recorded, pages, code = _write_in_one(session, rows, released, me, now)
    else:
        recorded, pages, code = _write(session, rows, released, me, now)
    queue.after_votes(session, recorded, live.config_from(cfg), me)
    refits = session.info.get("refits")
    if refits is not None and recorded:  # the web app's own refits (consensus/refit.py)
        refits.counted(session, len(recorded))
    if recorded:
        _counted(session, annotator, pages, code, cfg)
    return VoteResult(accepted=len(recorded), already=len(done), refused=refused)


def submit_page(session: Session, cfg: Settings, work: Callable[[], T]) -> T:
    """Run and commit a page's writes (:func:`record_votes`, or an undo), run again
    from the start if PostgreSQL aborted them to break a deadlock
    (:func:`~synset_builder.db.session.committed`); then decide again, in
    transactions of their own, the items of an annotator the page excluded."""
    result = committed(session, work)
    live.reopen_deferred(session, live.config_from(cfg))
    return result


Written = tuple[list[int], int | None, str | None]


def _write(
    session: Session, rows: list[dict], released: list[int], me: int, now: object
) -> Written:
    """Votes, leases released, the page counted: one statement each (SQLite)."""
    conn = session.connection()
    recorded: list[int] = []
    if rows:
        params = rows_params(rows, sql.VOTE_COLUMNS, False)
        recorded = list(conn.execute(sql.insert_votes(False), params).scalars())
    if released:
        conn.execute(sql.release_leases(False), {"ids": released, "me": me, "now": now})
    if not recorded:
        return recorded, None, None
    pages, code = conn.execute(sql.count_page(), {"me": me}).one()
    return recorded, pages, code


def _write_in_one(
    session: Session, rows: list[dict], released: list[int], me: int, now: object
) -> Written:
    """The same as :func:`_write` in one statement (``sql.write_answers``, PostgreSQL)."""
    params = rows_params(rows, sql.VOTE_COLUMNS, True, released=released, me=me, now=now)
    result = session.connection().execute(sql.write_answers(), params).all()
    return [r.candidate_id for r in result], *(result[0][1:] if result else (None, None))


def _counted(
    session: Session,
    annotator: Annotator | Voter,
    pages: int | None,
    code: str | None,
    cfg: Settings,
) -> None:
    """Crowd workers get their completion code after enough pages."""
    if annotator.worker_id and code is None and pages is not None and pages >= cfg.crowd_pages:
        code = secrets.token_hex(5).upper()
        session.connection().execute(sql.set_completion_code(), {"me": annotator.id, "code": code})
    if isinstance(annotator, Annotator):
        # The row was written in Core: tell the loaded object without another query.
        set_committed_value(annotator, "pages_done", pages)
        set_committed_value(annotator, "completion_code", code)
