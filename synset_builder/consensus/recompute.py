"""``synset consensus``: recompute every decision from the votes, idempotently.

The live path (:mod:`.live`) decides the items of each submit as they come;
this is the same rule played over every vote in the database, in the order they
were cast (:class:`.replay.DynamicConsensus` with ``serve_closed=True``): the
same state, the same verdicts, the same exclusions, then a refit of the skills
and the class priors on everything, after which every item is looked at again.
It writes one Consensus row per voted candidate, every voter's record (counts,
sensitivity, specificity, exclusion and its reason) and each synset's prior,
which the web app decides with from then on. Running it twice gives the same
rows.

``--method majority`` or ``dawid-skene`` decide by the most likely answer over
all the votes of the annotators the rule kept instead.

Estimated precision per synset is the mean posterior over the accepted items:
the model's belief, not a measurement (an audit measures it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from synset_builder.consensus import METHODS
from synset_builder.consensus import live_sql as sql
from synset_builder.consensus.dynamic import DynamicConfig, Verdict, after_requeue
from synset_builder.consensus.live import ensure_initial_subset
from synset_builder.consensus.model import SkillState
from synset_builder.consensus.quality import gold_counts
from synset_builder.consensus.replay import DynamicConsensus
from synset_builder.db.models import (
    Annotator,
    AnnotatorQuality,
    Candidate,
    Consensus,
    Gold,
    Requeue,
    Synset,
    Vote,
)
from synset_builder.errors import InvalidInput

CLASSES: list[Hashable] = [False, True]


@dataclass(frozen=True)
class RecomputeConfig:
    method: str = "dynamic"
    dynamic: DynamicConfig = field(default_factory=DynamicConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInput(
                f"Unknown consensus method {self.method!r}; choose one of {', '.join(METHODS)}."
            )


@dataclass(frozen=True)
class SynsetSummary:
    wnid: str
    name: str
    accepted: int
    rejected: int
    undecided: int
    pending: int
    mean_votes: float | None  # per decided (accepted or rejected) item
    precision: float | None  # estimated, over the accepted items

    def as_json(self) -> dict[str, object]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Outcome:
    synsets: list[SynsetSummary]
    excluded: dict[str, str]  # username -> reason


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def recompute(session: Session, config: RecomputeConfig) -> Outcome:
    """Replay every vote through the rule, refit, and rewrite the rows; safe to run again."""
    cfg = config.dynamic
    rows_v = session.execute(
        select(Vote.candidate_id, Vote.annotator_id, Vote.answer, Vote.created_at).order_by(Vote.id)
    ).all()
    synset_of = dict(session.execute(select(Candidate.id, Candidate.synset_id)).all())
    gold = dict(session.execute(select(Gold.candidate_id, Gold.answer)).all())
    votes = [(cid, a, ans) for cid, a, ans, _ in rows_v]
    groups = {cid: synset_of[cid] for cid, _, _ in votes}
    for sid in sorted(set(groups.values())):
        ensure_initial_subset(session, sid, cfg)
    initial = set(session.scalars(select(Consensus.candidate_id).where(Consensus.initial)))
    # The team as the web app counts it, exclusions left to the replay.
    voters = {a for _, a, _ in votes}
    team = {
        a
        for a, role in session.execute(
            select(Annotator.id, Annotator.role).where(sql.can_vote_clause())
        )
        if role == "annotator" or a in voters
    }
    model = DynamicConsensus(config=cfg).replay(
        votes, gold=gold, groups=groups, classes=CLASSES, initial=initial,
        serve_closed=True, team=team,
    )  # fmt: skip
    state = model.state_ or SkillState(k=2)
    excluded = dict(model.excluded_)
    verdicts = model.verdicts_
    if config.method != "dynamic":
        kept = [v for v in votes if v[1] not in excluded]
        other = METHODS[config.method](cfg).fit(kept, gold=gold, classes=CLASSES)
        verdicts = {item: _most_likely(other.probas_[item][True]) for item in other.probas_}
    _write_records(session, state, votes, verdicts)
    _write_priors(session, state)
    _write(session, config.method, cfg, rows_v, verdicts, gold, excluded, team)
    session.flush()
    return Outcome(synsets=summarise(session), excluded=_names(session, excluded))


def _most_likely(p_yes: float) -> Verdict:
    """Majority and Dawid-Skene decide by the most likely answer; a tie stays undecided."""
    probs = (1.0 - p_yes, p_yes)
    if p_yes == 0.5:
        return Verdict("undecided", 1, probs, "tie")
    return Verdict("decided", int(p_yes > 0.5), probs)


def _write_records(
    session: Session,
    state: SkillState,
    votes: list[tuple[int, int, bool]],
    verdicts: Mapping[int, Verdict],
) -> None:
    """Every voter's record as the replay left it: what the web app reads next.

    An excluded annotator's votes count nowhere, so their record shows instead how
    their answers compare with the final decisions: what a curator checks.
    """
    measured: dict[int, np.ndarray] = {}
    cast: dict[int, int] = defaultdict(int)
    for item, annotator, answer in votes:
        cast[annotator] += 1
        if annotator in state.excluded and item in verdicts:
            m = measured.setdefault(annotator, np.zeros((2, 2)))
            m[:, int(answer)] += verdicts[item].probs
    voters = sorted(cast)
    gold = gold_counts(session, voters)
    rows = {q.annotator_id: q for q in session.scalars(select(AnnotatorQuality))}
    for annotator in voters:
        m = np.asarray(measured.get(annotator, state.counts.get(annotator, state.zeros())))
        answers = state.answers.get(annotator, [0.0, 0.0])
        conf = state.confusion_from(m, state.gold_counts.get(annotator))
        row = rows.get(annotator)
        if row is None:
            row = AnnotatorQuality(annotator_id=annotator)
            session.add(row)
        g = gold[annotator]
        row.votes = cast[annotator]
        row.gold_total, row.gold_correct = sum(g.values()), g["yy"] + g["nn"]
        row.sensitivity, row.specificity = conf[1][1], conf[0][0]
        row.nn, row.ny, row.yn, row.yy = (float(v) for v in (m[0, 0], m[0, 1], m[1, 0], m[1, 1]))
        row.answered_no, row.answered_yes = float(answers[0]), float(answers[1])
        reason = state.excluded.get(annotator)
        row.excluded, row.exclusion_reason = reason is not None, reason


def _write_priors(session: Session, state: SkillState) -> None:
    for synset in session.scalars(select(Synset).where(Synset.id.in_(list(state.priors)))):
        synset.prior_yes = float(state.priors[synset.id][1])


def _write(
    session: Session,
    method_name: str,
    cfg: DynamicConfig,
    rows_v: list,
    verdicts: Mapping[int, Verdict],
    gold: Mapping[int, bool],
    excluded: Mapping[int, str],
    team: set[int],
) -> None:
    """One Consensus row per voted candidate (and kept rows for the initial subsets)."""
    counted: dict[int, list[datetime]] = defaultdict(list)
    voters: dict[int, set[int]] = defaultdict(set)
    for cid, annotator, _, created in rows_v:
        voters[cid].add(annotator)
        if annotator not in excluded:
            counted[cid].append(_utc(created))
    existing = {row.candidate_id: row for row in session.scalars(select(Consensus))}
    requeues: dict[int, list[Requeue]] = defaultdict(list)
    for rq in session.scalars(select(Requeue).where(Requeue.resolved_at.is_(None))):
        requeues[rq.candidate_id].append(rq)
    left_team = team - set(excluded)
    now = datetime.now(UTC)
    for cid in sorted(set(counted) | set(existing)):
        row = existing.get(cid)
        times = counted.get(cid, [])
        verdict = verdicts.get(cid)
        if cid in gold:
            verdict = Verdict("decided", int(gold[cid]), (1.0 - gold[cid], float(gold[cid])))
        elif verdict is None or not times:
            p_kept = row.p_yes if row else 0.5
            verdict = Verdict("pending", int(p_kept > 0.5), (1.0 - p_kept, p_kept))
        if requeues.get(cid) and cid not in gold:
            since = min(_utc(rq.created_at) for rq in requeues[cid])
            nobody = bool(left_team) and not (left_team - voters[cid])
            fresh = sum(1 for t in times if t >= since)
            verdict = after_requeue(verdict, fresh, cfg, nobody_left=nobody)
            if verdict.word != "pending":
                for rq in requeues[cid]:
                    rq.resolved_at = now
        p_yes, decision, reason = verdict.probs[1], verdict.decision, verdict.reason
        if row is None:
            row = Consensus(candidate_id=cid, initial=False)
            session.add(row)
        row.p_yes, row.decision, row.method, row.n_votes = p_yes, decision, method_name, len(times)
        row.reason = reason if decision == "undecided" else None


def _names(session: Session, excluded: dict[int, str]) -> dict[str, str]:
    from synset_builder.db.models import Annotator

    if not excluded:
        return {}
    users = session.execute(
        select(Annotator.id, Annotator.username).where(Annotator.id.in_(excluded))
    ).all()
    return {name: excluded[aid] for aid, name in users}


def summarise(session: Session) -> list[SynsetSummary]:
    """Per synset with any consensus row: decisions, votes per decided item, precision."""
    stmt = (
        select(Synset.wnid, Synset.name, Consensus.candidate_id, Consensus.decision)
        .join(Candidate, Candidate.synset_id == Synset.id)
        .join(Consensus, Consensus.candidate_id == Candidate.id)
        .order_by(Synset.wnid)
    )
    n_votes = dict(session.execute(select(Consensus.candidate_id, Consensus.n_votes)).all())
    p_rows = dict(session.execute(select(Consensus.candidate_id, Consensus.p_yes)).all())
    by_synset: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for wnid, name, cid, decision in session.execute(stmt):
        by_synset[(wnid, name)].append((cid, decision))
    out = []
    for (wnid, name), items in by_synset.items():
        tally = defaultdict(int)
        for _, decision in items:
            tally[decision] += 1
        decided = [cid for cid, d in items if d in ("accepted", "rejected")]
        accepted = [cid for cid, d in items if d == "accepted"]

        def p_of(cid: int) -> float:
            return float(p_rows[cid])

        out.append(
            SynsetSummary(
                wnid=wnid,
                name=name,
                accepted=tally["accepted"],
                rejected=tally["rejected"],
                undecided=tally["undecided"],
                pending=tally["pending"],
                mean_votes=(sum(n_votes[c] for c in decided) / len(decided) if decided else None),
                precision=(sum(p_of(c) for c in accepted) / len(accepted) if accepted else None),
            )
        )
    return out
