"""Expert decisions: a curator's judgement over the crowd's, and the decision in force.

A curator's judgement of an item is appended to ``expert_decision`` with who and
when; the newest row per candidate is in force, a row with ``label`` NULL hands
the item back to the crowd. Votes and the ``consensus`` row are never touched, so
``synset consensus`` may rewrite consensus as often as it likes: the decision in
force is computed when read (:func:`decision_in_force`), and the export, ``synset
status`` and the dashboard all read it through this module.

A judgement is also the item's gold answer (unless a gold file gave it one
already): through the ``gold`` table it measures the annotators who voted on the
item, in the consensus model's skills, the dashboard's gold accuracy and the
exclusion rule, with no second path for "expert gold".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Subquery, case, func, select, text, update
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.db.models import AuditSample, Candidate, Consensus, ExpertDecision, Gold
from synset_builder.decision import Decision
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.review.figures import MOVES_SQL, moves

# Judgements one call may record (a page is 24; an API body is refused beyond this).
MAX_BATCH = 1000


def in_force() -> Subquery:
    """The expert decision in force per judged candidate: ``candidate_id``, ``label``,
    ``annotator_id``, ``created_at`` (``label`` NULL: handed back to the crowd).

    Small: one row per item a curator ever judged, found through the
    (candidate_id, id) index.
    """
    newest = select(func.max(ExpertDecision.id)).group_by(ExpertDecision.candidate_id)
    return (
        select(
            ExpertDecision.candidate_id,
            ExpertDecision.label,
            ExpertDecision.annotator_id,
            ExpertDecision.created_at,
        )
        .where(ExpertDecision.id.in_(newest))
        .subquery("expert")
    )


def decision_in_force(expert: Subquery) -> ColumnElement[str | None]:
    """The decision that counts: the expert's label where one is in force, else the
    crowd's ``Consensus.decision`` (NULL where neither exists).

    Use with ``.outerjoin(expert, expert.c.candidate_id == Candidate.id)`` and an
    outer join to ``Consensus`` (an expert may judge an item nobody voted on).
    """
    return case(
        (expert.c.label.is_(True), Decision.accepted),
        (expert.c.label.is_(False), Decision.rejected),
        else_=Consensus.decision,
    )


@dataclass(frozen=True)
class Judged:
    """What :func:`record` did: judgements written, and how many changed the decision."""

    recorded: int
    changed: int


def record(
    session: Session,
    judgements: Iterable[tuple[int, bool | None]],
    *,
    curator_id: int,
) -> Judged:
    """Append each ``(candidate_id, label)`` as an expert decision (None withdraws).

    Every id is checked before anything is written: one unknown id refuses the
    whole batch (:class:`NotFound`). A repeat of the judgement in force is recorded
    too (a confirmation is a judgement: the audit counts it), but changes nothing.
    The caller commits.
    """
    wanted = dict(judgements)
    if len(wanted) > MAX_BATCH:
        raise InvalidInput(f"At most {MAX_BATCH} judgements at a time.")
    if not wanted:
        return Judged(0, 0)
    ids = sorted(wanted)
    known = set(session.scalars(select(Candidate.id).where(Candidate.id.in_(ids))))
    unknown = [cid for cid in ids if cid not in known]
    if unknown:
        raise NotFound(f"Unknown item(s): {', '.join(map(str, unknown[:10]))}.")
    newest = (
        select(func.max(ExpertDecision.id))
        .where(ExpertDecision.candidate_id.in_(ids))
        .group_by(ExpertDecision.candidate_id)
    )
    now = {
        cid: (label, made_gold)
        for cid, label, made_gold in session.execute(
            select(ExpertDecision.candidate_id, ExpertDecision.label, ExpertDecision.gold).where(
                ExpertDecision.id.in_(newest)
            )
        )
    }
    gold = dict(
        session.execute(
            select(Gold.candidate_id, Gold.answer).where(Gold.candidate_id.in_(ids))
        ).all()
    )
    changed = 0
    for cid in ids:
        label = wanted[cid]
        before, ours = now.get(cid, (None, False))
        changed += before != label
        made_gold = _set_gold(session, cid, label, gold.get(cid), ours)
        session.add(ExpertDecision(candidate_id=cid, label=label, annotator_id=curator_id,
                                   gold=made_gold))  # fmt: skip
    _audit_verdicts(session, wanted, curator_id)
    session.flush()
    return Judged(len(ids), changed)


def _set_gold(
    session: Session, cid: int, label: bool | None, answer: bool | None, ours: bool
) -> bool:
    """Make ``label`` the item's gold answer, unless a gold file set one; True when the
    gold answer is now the curator's. Withdrawing removes only a curator's gold."""
    if answer is not None and not ours:
        return False  # a gold file's answer stands
    row = session.get(Gold, cid)
    if label is None:
        if row is not None:
            session.delete(row)
        return False
    if row is None:
        session.add(Gold(candidate_id=cid, answer=label))
    elif row.answer != label:
        row.answer = label
    return True


def _audit_verdicts(session: Session, wanted: Mapping[int, bool | None], curator_id: int) -> None:
    """Write each judgement on the item's audit sample rows: the audit's verdict is the
    curator's latest word (a withdrawal leaves the verdict the audit took)."""
    now = datetime.now(UTC)
    for label in (True, False):
        ids = [cid for cid, v in wanted.items() if v is label]
        if ids:
            session.execute(
                update(AuditSample)
                .where(AuditSample.candidate_id.in_(ids))
                .values(judged_label=label, judged_by=curator_id, judged_at=now)
            )


def withdraw(session: Session, candidate_ids: Iterable[int], *, curator_id: int) -> Judged:
    """Hand items back to the crowd's consensus (the judgements stay in the history)."""
    return record(session, ((cid, None) for cid in candidate_ids), curator_id=curator_id)


def adjustments(session: Session) -> dict[int, dict[str, int]]:
    """Per synset, what the expert decisions in force move between the decision counters.

    The kept counters (synset_builder/tally.py) count the crowd's decisions; an
    item a curator judged leaves its crowd counter and joins the expert's. One
    pass over the judged items only, so it costs the same at any project size.
    """
    return moves(session.execute(text(MOVES_SQL)))


def apply(counts: Mapping[int, Mapping[str, int]], moves: Mapping[int, Mapping[str, int]]
          ) -> dict[int, dict[str, int]]:  # fmt: skip
    """``counts`` (per synset, per counter) with :func:`adjustments` added."""
    out = {sid: dict(c) for sid, c in counts.items()}
    for sid, delta in moves.items():
        row = out.setdefault(sid, dict.fromkeys(tally.COUNTS, 0))
        for name, n in delta.items():
            row[name] = row.get(name, 0) + n
    return out


def read_tallies(session: Session) -> dict[int, tally.Tally]:
    """The kept counters (:func:`synset_builder.tally.read`) with the decisions in force."""
    kept = tally.read(session)
    moved = apply({sid: t.counts for sid, t in kept.items()}, adjustments(session))
    return {
        sid: tally.Tally(counts, kept[sid].agreed_items, kept[sid].agreement_sum)
        if sid in kept else tally.Tally(counts)
        for sid, counts in moved.items()
    }  # fmt: skip
