"""The blind precision audit: what share of a synset's accepted images a curator confirms.

The consensus threshold is the model's belief; an audit measures. ``synset audit
start`` draws a uniform random sample of a synset's accepted items (in force and
in the pool: what an export would hold) into ``audit_sample``; the review page
serves those first, without the crowd's decision or votes, and each judgement is
written on the sample row (and as an expert decision, which fixes a wrong
acceptance at once). Precision is confirmed / judged with a 95% Wilson interval:
a sample of 50 all confirmed still says "at least 0.93", not "1.0".

The figures themselves (Wilson's interval, the pooled precision weighted by
accepted count) are synset_builder/review/figures.py's, shared with the
SQLAlchemy-free ``synset status``.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from synset_builder.db.models import Annotator, AuditSample, Candidate, Consensus, Image, Synset
from synset_builder.decision import Decision
from synset_builder.errors import InvalidInput, NotFound
from synset_builder.pool import clean_clause
from synset_builder.review.decisions import decision_in_force, in_force
from synset_builder.review.figures import AUDIT_SQL, Figure, Pooled, pooled, wilson
from synset_builder.review.figures import figures as audit_figures

__all__ = ["Figure", "Pooled", "figures", "pooled", "report", "start", "wilson"]

MAX_SAMPLE = 100_000


@dataclass(frozen=True)
class Drawn:
    """What ``audit start`` did for one synset."""

    wnid: str
    added: int
    round: int
    seed: int | None
    in_progress: bool = False  # an open audit, so nothing was drawn (no --more)


def _in_force_ids(session: Session, synset_id: int, decision: str) -> list[int]:
    expert = in_force()
    stmt = (
        select(Candidate.id)
        .join(Image, Image.id == Candidate.image_id)
        .outerjoin(Consensus, Consensus.candidate_id == Candidate.id)
        .outerjoin(expert, expert.c.candidate_id == Candidate.id)
        .where(
            Candidate.synset_id == synset_id, decision_in_force(expert) == decision, clean_clause()
        )  # fmt: skip
        .order_by(Candidate.id)
    )
    return list(session.scalars(stmt))


def start(
    session: Session,
    wnids: Iterable[str],
    *,
    n: int = 50,
    seed: int | None = None,
    rejected: bool = False,
    more: bool = False,
) -> list[Drawn]:
    """Draw up to ``n`` accepted (and, with ``rejected``, ``n`` rejected) items per synset.

    Uniform without replacement over the items not drawn before, in candidate id
    order with ``random.Random(seed)``: the same seed on the same decisions draws
    the same sample. A synset with unjudged sample items is left alone unless
    ``more``. The caller commits.
    """
    if not 1 <= n <= MAX_SAMPLE:
        raise InvalidInput(f"--n must be between 1 and {MAX_SAMPLE}.")
    names = list(dict.fromkeys(wnids))
    found = dict(
        session.execute(select(Synset.wnid, Synset.id).where(Synset.wnid.in_(names))).all()
    )
    missing = [w for w in names if w not in found]
    if missing:
        raise NotFound(f"Unknown synset(s): {', '.join(missing)}.")
    out = []
    for wnid in names:
        sid = found[wnid]
        open_items, last_round = session.execute(
            select(
                func.count(AuditSample.id).filter(AuditSample.judged_label.is_(None)),
                func.max(AuditSample.round),
            ).where(AuditSample.synset_id == sid)
        ).one()
        if open_items and not more:
            out.append(Drawn(wnid, 0, int(last_round), None, in_progress=True))
            continue
        this_seed = seed if seed is not None else secrets.randbits(48)
        rng = random.Random(this_seed)
        drawn_before = set(session.scalars(
            select(AuditSample.candidate_id).where(AuditSample.synset_id == sid)))  # fmt: skip
        round_no = int(last_round or 0) + 1
        added = 0
        for kind in (Decision.accepted, Decision.rejected) if rejected else (Decision.accepted,):
            pool = [c for c in _in_force_ids(session, sid, kind) if c not in drawn_before]
            for cid in rng.sample(pool, min(n, len(pool))):
                session.add(AuditSample(synset_id=sid, candidate_id=cid, round=round_no,
                                        kind=kind, seed=this_seed))  # fmt: skip
                added += 1
        out.append(Drawn(wnid, added, round_no if added else round_no - 1, this_seed))
    session.flush()
    return out


def pooled_now(session: Session) -> Pooled:
    """The pooled audited precision of the whole project, as the dashboard shows it."""
    from synset_builder.review.decisions import read_tallies

    accepted = {sid: t.counts["accepted"] for sid, t in read_tallies(session).items()}
    return pooled(figures(session), accepted)


def figures(session: Session) -> dict[int, Figure]:
    """Per audited synset id, its counts over every round (never audited: absent)."""
    return audit_figures(session.execute(text(AUDIT_SQL)))


@dataclass(frozen=True)
class Wrong:
    """An audited item the curator judged against the crowd's decision."""

    wnid: str
    candidate_id: int
    sha256: str
    kind: str  # the decision drawn: accepted (judged no) or rejected (judged yes)
    judged_by: str | None


@dataclass
class Report:
    synsets: list[tuple[str, str, Figure]] = field(default_factory=list)
    pooled: Pooled | None = None
    wrong: list[Wrong] = field(default_factory=list)


def report(session: Session, accepted: Mapping[int, int]) -> Report:
    """Every audited synset's figure, the pooled one, and the items found wrong."""
    per = figures(session)
    names = {sid: (wnid, name) for sid, wnid, name in session.execute(
        select(Synset.id, Synset.wnid, Synset.name).where(Synset.id.in_(list(per))))}  # fmt: skip
    out = Report(pooled=pooled(per, accepted))
    for sid in sorted(per, key=lambda s: names[s][0]):
        out.synsets.append((*names[sid], per[sid]))
    s = AuditSample
    wrong = (
        select(Synset.wnid, s.candidate_id, Image.sha256, s.kind, Annotator.username)
        .join(Synset, Synset.id == s.synset_id)
        .join(Candidate, Candidate.id == s.candidate_id)
        .join(Image, Image.id == Candidate.image_id)
        .outerjoin(Annotator, Annotator.id == s.judged_by)
        .where(
            or_(
                and_(s.kind == Decision.accepted, s.judged_label.is_(False)),
                and_(s.kind == Decision.rejected, s.judged_label.is_(True)),
            )
        )
        .order_by(Synset.wnid, s.candidate_id)
    )
    out.wrong = [Wrong(*row) for row in session.execute(wrong)]
    return out
