"""``synset consensus``: recompute every decision from the votes, idempotently.

The live path (:mod:`.live`) only nudges the items just voted on; this is the
periodic full refit. It fits the skill model (EM with shrinkage, see
:mod:`.dynamic`) on all votes with gold clamped, measures every annotator,
excludes those below the skill floor (reason recorded), refits without them,
then writes one Consensus row per voted candidate with the chosen method's
``P(yes)`` and decision. Running it twice gives the same rows.

Estimated precision per synset is the mean skill-weighted posterior over the
accepted items, whichever method decided: it is the model's best guess at the
share of accepted images that truly show the synset.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from synset_builder.consensus import METHODS
from synset_builder.consensus.base import Aggregator
from synset_builder.consensus.dynamic import DynamicConfig, DynamicConsensus, decide
from synset_builder.consensus.live import ensure_initial_subset
from synset_builder.consensus.quality import ExclusionRule, gold_counts
from synset_builder.db.models import (
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
    exclusion: ExclusionRule = field(default_factory=ExclusionRule)

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


def _binary_decision(p_yes: float, n: int, cfg: DynamicConfig) -> str:
    """Majority and Dawid-Skene decide by the most likely answer; ties wait for votes."""
    if p_yes > 0.5:
        return "accepted"
    if p_yes < 0.5:
        return "rejected"
    return "undecided" if n >= cfg.max_votes else "pending"


def _measure(
    session: Session,
    model: DynamicConsensus,
    votes: list[tuple[int, int, bool]],
    rule: ExclusionRule,
) -> dict[int, str]:
    """Write every voter's quality row; return the excluded ones with their reason."""
    per_annotator: dict[int, dict[str, float]] = defaultdict(
        lambda: {"yy": 0.0, "yn": 0.0, "ny": 0.0, "nn": 0.0}
    )
    n_votes: dict[int, int] = defaultdict(int)
    for cid, annotator, answer in votes:
        n_votes[annotator] += 1
        p = model.probas_[cid][True]
        counts = per_annotator[annotator]
        counts["yy" if answer else "yn"] += p
        counts["ny" if answer else "nn"] += 1.0 - p
    gold = gold_counts(session, n_votes)
    rows = {q.annotator_id: q for q in session.scalars(select(AnnotatorQuality))}
    excluded: dict[int, str] = {}
    for annotator, n in n_votes.items():
        conf = model.confusions_[annotator]
        sens, spec = float(conf[1, 1]), float(conf[0, 0])
        g = gold[annotator]
        g_total = sum(g.values())
        g_correct = g["yy"] + g["nn"]
        reason = rule.reason((sens + spec) / 2, n, g_total, g_correct)
        row = rows.get(annotator) or AnnotatorQuality(annotator_id=annotator)
        if row.annotator_id not in rows:
            session.add(row)
        row.votes, row.gold_total, row.gold_correct = n, g_total, g_correct
        row.sensitivity, row.specificity = sens, spec
        row.counts = {k: round(v, 6) for k, v in per_annotator[annotator].items()}
        row.excluded, row.exclusion_reason = reason is not None, reason
        if reason is not None:
            excluded[annotator] = reason
    return excluded


def recompute(session: Session, config: RecomputeConfig) -> Outcome:
    """Refit everything and rewrite the Consensus rows; safe to run again."""
    cfg = config.dynamic
    rows_v = session.execute(
        select(Vote.candidate_id, Vote.annotator_id, Vote.answer, Vote.created_at).order_by(Vote.id)
    ).all()
    synset_of = dict(session.execute(select(Candidate.id, Candidate.synset_id)).all())
    gold = dict(session.execute(select(Gold.candidate_id, Gold.answer)).all())
    votes = [(cid, a, ans) for cid, a, ans, _ in rows_v]
    groups = {cid: synset_of[cid] for cid, _, _ in votes}
    if config.method == "dynamic":
        for sid in sorted(set(groups.values())):
            ensure_initial_subset(session, sid, cfg)
    calibration = set(session.scalars(select(Consensus.candidate_id).where(Consensus.initial)))
    fit = {"gold": gold, "groups": groups, "classes": CLASSES, "calibration": calibration}
    # Annotators are measured on all their votes (robust for exclusion); decisions
    # use skills calibrated on the initial subsets (see dynamic.py).
    skill_model = DynamicConsensus(config=cfg).fit(votes, **{**fit, "calibration": None})
    excluded = _measure(session, skill_model, votes, config.exclusion) if votes else {}
    kept = [v for v in votes if v[1] not in excluded]
    model = DynamicConsensus(config=cfg).fit(kept, **fit)
    method = model if config.method == "dynamic" else METHODS[config.method](cfg)
    if method is not model:
        method.fit(kept, gold=gold, classes=CLASSES)
    _write(
        session,
        method_name=config.method,
        cfg=cfg,
        rows_v=rows_v,
        excluded=excluded,
        method=method,
        gold=gold,
    )
    session.flush()
    return Outcome(synsets=summarise(session, model), excluded=_names(session, excluded))


def _write(
    session: Session,
    *,
    method_name: str,
    cfg: DynamicConfig,
    rows_v: Sequence[Row],
    excluded: Mapping[int, str],
    method: Aggregator,
    gold: Mapping[int, bool],
) -> None:
    """One Consensus row per voted candidate (and kept rows for the initial subsets)."""
    counted: dict[int, list[datetime]] = defaultdict(list)
    for cid, annotator, _, created in rows_v:
        if annotator not in excluded:
            counted[cid].append(created.replace(tzinfo=UTC) if created.tzinfo is None else created)
    existing = {row.candidate_id: row for row in session.scalars(select(Consensus))}
    requeues: dict[int, list[Requeue]] = defaultdict(list)
    for rq in session.scalars(select(Requeue).where(Requeue.resolved_at.is_(None))):
        requeues[rq.candidate_id].append(rq)
    now = datetime.now(UTC)
    for cid in sorted(set(counted) | set(existing)):
        row = existing.get(cid)
        times = counted.get(cid, [])
        n = len(times)
        initial = bool(row and row.initial)
        if cid in gold:
            p_yes, decision = float(gold[cid]), "accepted" if gold[cid] else "rejected"
        elif n == 0:
            p_yes, decision = (row.p_yes if row else 0.5), "pending"
        else:
            p_yes = float(method.probas_[cid][True])
            if method_name == "dynamic":
                decision = decide(p_yes, n, initial=initial, config=cfg)
            else:
                decision = _binary_decision(p_yes, n, cfg)
        if requeues.get(cid) and cid not in gold:
            since = min(
                rq.created_at.replace(tzinfo=UTC) if rq.created_at.tzinfo is None else rq.created_at
                for rq in requeues[cid]
            )
            if sum(1 for t in times if t >= since) < cfg.requeue_votes:
                decision = "pending"
            elif decision != "pending":
                for rq in requeues[cid]:
                    rq.resolved_at = now
        if row is None:
            row = Consensus(candidate_id=cid, initial=False)
            session.add(row)
        row.p_yes, row.decision, row.method, row.n_votes = p_yes, decision, method_name, n


def _names(session: Session, excluded: dict[int, str]) -> dict[str, str]:
    from synset_builder.db.models import Annotator

    if not excluded:
        return {}
    users = session.execute(
        select(Annotator.id, Annotator.username).where(Annotator.id.in_(excluded))
    ).all()
    return {name: excluded[aid] for aid, name in users}


def summarise(session: Session, model: DynamicConsensus | None = None) -> list[SynsetSummary]:
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
            if model is not None and cid in model.probas_:
                return float(model.probas_[cid][True])
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
