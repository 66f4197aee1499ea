"""The exact recount behind ``synset status --recount``: check and repair the kept counters.

Pages and commands read counters that triggers keep (synset_builder/tally.py).
This module counts the same numbers from their definitions, one scan of each
table (minutes at ILSVRC's size, so only on request), says which kept counter
differed, and resets the kept counters to the exact ones. Tests use it to hold
the two equal after every kind of write.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select, text, true, update
from sqlalchemy.orm import Session

from synset_builder import tally
from synset_builder.db.models import Annotator, Consensus, Gold, Image, Synset, Vote
from synset_builder.db.session import on_postgresql
from synset_builder.decision import Decision
from synset_builder.pool import withheld_clause
from synset_builder.status import COUNTERS, count_agreement


def exact_tallies(session: Session) -> dict[int, tally.Tally]:
    """Per synset, the kept counts as the definitions (status.COUNTERS) give them now."""
    counted = {name: COUNTERS[name](session) for name in tally.COUNTS}
    agreement = count_agreement(session)
    ids = set(agreement).union(*counted.values())
    return {
        sid: tally.Tally(
            {name: counted[name].get(sid, 0) for name in tally.COUNTS},
            *agreement.get(sid, (0, 0.0)),
        )
        for sid in ids
    }


def exact_voters(session: Session) -> dict[int, dict[str, int]]:
    """Per annotator: votes, timed votes and their milliseconds, gold answered and
    right (and of those, truth yes and answered yes), votes on decided items and
    those siding with the decision."""
    out: dict[int, dict[str, int]] = {}

    def add(stmt, *names: str) -> None:  # noqa: ANN001 - a select of (annotator, numbers)
        for aid, *values in session.execute(stmt):
            row = out.setdefault(aid, dict.fromkeys(tally.VOTER, 0))
            row.update({n: int(v or 0) for n, v in zip(names, values, strict=True)})

    by_voter = (Vote.annotator_id,)
    add(
        select(*by_voter, func.count(), func.count(Vote.time_ms), func.sum(Vote.time_ms))
        .group_by(Vote.annotator_id),
        "votes", "timed_votes", "time_ms",
    )  # fmt: skip
    right = func.sum(case((Vote.answer == Gold.answer, 1), else_=0))
    truth_yes = func.sum(case((Gold.answer.is_(true()), 1), else_=0))
    said_yes = func.sum(case((Vote.answer.is_(true()), 1), else_=0))
    add(
        select(*by_voter, func.count(), right, truth_yes, said_yes)
        .join(Gold, Gold.candidate_id == Vote.candidate_id)
        .group_by(Vote.annotator_id),
        "gold_answered", "gold_correct", "gold_truth_yes", "gold_said_yes",
    )  # fmt: skip
    agrees = case((Vote.answer == (Consensus.decision == Decision.accepted), 1), else_=0)
    add(
        select(*by_voter, func.count(), func.sum(agrees))
        .join(Consensus, Consensus.candidate_id == Vote.candidate_id)
        .where(Consensus.decision.in_((Decision.accepted, Decision.rejected)))
        .group_by(Vote.annotator_id),
        "decided", "agreed",
    )  # fmt: skip
    return out


@dataclass(frozen=True)
class Drift:
    """A kept counter that differed from the recount (now corrected)."""

    subject: str  # a synset's wnid, or "annotator NAME"
    counter: str
    kept: float | None
    exact: float | None


def recount(session: Session) -> list[Drift]:
    """Count everything exactly, reset the kept counters to it, say what differed.

    Writers wait meanwhile (PostgreSQL: an exclusive lock on the ledgers their
    triggers append to; SQLite: the write lock, taken first), so no change falls
    between the count and the reset. ``image.withheld``, which the triggers read,
    is repaired first. The caller commits.
    """
    if on_postgresql(session):
        session.execute(
            text("LOCK TABLE synset_tally_delta, annotator_tally_delta IN EXCLUSIVE MODE")
        )
    else:
        session.execute(text("DELETE FROM synset_tally_delta WHERE id < 0"))
    kept, kept_voters = tally.read(session), tally.read_annotators(session)
    flag = withheld_clause()
    session.execute(
        update(Image).where(Image.withheld != flag).values(withheld=flag),
        execution_options={"synchronize_session": False},
    )
    exact, exact_voter = exact_tallies(session), exact_voters(session)
    tally.replace(session, exact, exact_voter)
    drift = []
    wnids = dict(session.execute(select(Synset.id, Synset.wnid)).all())
    for sid in sorted(set(kept) | set(exact), key=lambda i: wnids.get(i, "")):
        before, after = kept.get(sid, tally.EMPTY), exact.get(sid, tally.EMPTY)
        name = wnids.get(sid, f"synset {sid}")
        drift += [Drift(name, c, before.counts[c], after.counts[c]) for c in tally.COUNTS
                  if before.counts[c] != after.counts[c]]  # fmt: skip
        if before.agreed_items != after.agreed_items or not _close(before, after):
            drift.append(Drift(name, "agreement", before.agreement, after.agreement))
    names = dict(session.execute(select(Annotator.id, Annotator.username)).all())
    zero = dict.fromkeys(tally.VOTER, 0)
    for aid in sorted(set(kept_voters) | set(exact_voter), key=lambda i: names.get(i, "")):
        before, after = kept_voters.get(aid, zero), exact_voter.get(aid, zero)
        who = f"annotator {names.get(aid, aid)}"
        drift += [Drift(who, c, before[c], after[c]) for c in tally.VOTER if before[c] != after[c]]
    return drift


def _close(a: tally.Tally, b: tally.Tally) -> bool:
    """Agreement sums are floats added in another order: equal up to rounding."""
    return abs(a.agreement_sum - b.agreement_sum) <= 1e-6 * max(1.0, abs(b.agreement_sum))
