"""``synset consensus``: recompute every decision from the votes, idempotently.

The live path (:mod:`.live`) decides the items of each submit as they come;
this is the same rule played over every vote in the database
(:class:`.replay.DynamicConsensus` with ``serve_closed=True``), synset by synset
and, within a synset, in the order the votes were cast: the same state, the
same verdicts, the same exclusions, what annotators showed in earlier synsets
carried into later ones. Then a refit of the skills and the class priors on
everything, after which every item is looked at again. It writes one Consensus
row per voted candidate, every voter's record (counts, sensitivity,
specificity, exclusion and its reason) and each synset's prior, which the web
app decides with from then on. Running it twice gives the same rows.

It holds a few synsets' votes at a time (:mod:`.synset_pass`: the one being
replayed and the two its reader thread holds ahead); what the refit
needs of every vote goes to scratch files (:mod:`.scratch`) and is read back a
chunk at a time, and each synset is written with one bulk statement. So its
memory is bounded by the largest synset and one chunk, plus a few numbers per
synset and per annotator, whatever the number of synsets.

``--method majority`` or ``dawid-skene`` decide by the most likely answer over
all the votes of the annotators the rule kept instead.

Estimated precision per synset is the mean posterior over the accepted items:
the model's belief, not a measurement (an audit measures it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from synset_builder.config.consensus import DynamicConfig
from synset_builder.consensus import METHODS, hard_items, write_pool
from synset_builder.consensus import live_sql as sql
from synset_builder.consensus.chunked_refit import CHUNK_VOTES
from synset_builder.consensus.dynamic import Verdict
from synset_builder.consensus.live import ensure_initial_subset
from synset_builder.consensus.model import SkillState
from synset_builder.consensus.quality import gold_counts
from synset_builder.consensus.replay import DynamicConsensus
from synset_builder.consensus.scratch import scratch_folder
from synset_builder.consensus.synset_pass import FitArrays, Written, read_ahead, synset_answers
from synset_builder.consensus.write_pool import (
    FinalPass,
    FinalRule,
    Verdicts,
    write_synsets,
)
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
from synset_builder.decision import Decision
from synset_builder.errors import InvalidInput

CLASSES: list[Hashable] = [False, True]
Progress = Callable[[str, int, int], None]  # (pass, synsets done, synsets in all)


@dataclass(frozen=True)
class RecomputeConfig:
    """``spill``: the refit's per-vote arrays in scratch files (:mod:`.scratch`), so
    memory does not grow with the project; off, they stay in memory (a small
    project's choice, and the tests' reference). ``chunk_votes``: votes per chunk of
    the refit (:mod:`.chunked_refit`); neither changes a single float."""

    method: str = "dynamic"
    dynamic: DynamicConfig = field(default_factory=DynamicConfig)
    spill: bool = True
    chunk_votes: int = CHUNK_VOTES

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
    # The share of items the crowd cannot tell, as the refit learned it; None: not
    # learned (too few closed items), as status and /api/synsets say.
    hard_share: float | None

    def as_json(self) -> dict[str, object]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Outcome:
    synsets: list[SynsetSummary]
    excluded: dict[str, str]  # username -> reason


def _synsets(session: Session) -> list[int]:
    """Synsets with a vote or a consensus row, in id order."""
    voted = select(Candidate.synset_id).join(Vote, Vote.candidate_id == Candidate.id)
    rowed = select(Candidate.synset_id).join(Consensus, Consensus.candidate_id == Candidate.id)
    return sorted(set(session.scalars(voted.distinct())) | set(session.scalars(rowed.distinct())))


def _team(session: Session) -> set[int]:
    """The team as the web app counts it, exclusions left to the replay."""
    voters = set(session.scalars(select(Vote.annotator_id).distinct()))
    return {
        a
        for a, role in session.execute(
            select(Annotator.id, Annotator.role).where(sql.can_vote_clause())
        )
        if role == "annotator" or a in voters
    }


def _initial(session: Session) -> dict[int, set[int]]:
    """Per synset, its initial subset (small: ``initial_size`` items a synset)."""
    out: dict[int, set[int]] = defaultdict(set)
    for sid, cid in session.execute(
        select(Candidate.synset_id, Consensus.candidate_id)
        .join(Candidate, Candidate.id == Consensus.candidate_id)
        .where(Consensus.initial)
    ):
        out[sid].add(cid)
    return out


def recompute(
    session: Session,
    config: RecomputeConfig,
    progress: Progress | None = None,
    *,
    writer: Engine | None = None,
    workers: int = 1,
    scratch_dir: Path | None = None,
) -> Outcome:
    """Replay every vote through the rule, refit, and rewrite the rows; safe to run again.

    ``writer``: write and commit each synset's rows on a connection of its own
    (the web app's refits). Beside a live web app, one transaction over every
    synset would hold its row locks, and the synset counters its triggers update,
    for the whole write pass: submits wait, and deadlock with it on the counters.
    The session then only reads until the voters' records and priors at the end;
    a crash between synsets leaves some rewritten, which the next run finishes.

    ``scratch_dir``: where the scratch folder of ``config.spill`` goes (the data
    folder, from the command line; None: the system's temporary folder). It is
    removed before this returns or raises.

    ``workers`` > 1 (PostgreSQL, the dynamic method, over ``write_pool.CHUNK``
    synsets, below which processes cost more than they save): the final pass in
    that many processes (:mod:`.write_pool`), one transaction a synset as with
    ``writer``; the decisions are the same as in one process.
    """
    cfg = config.dynamic
    tick = progress or (lambda _stage, _done, _total: None)
    gold = {cid: bool(a) for cid, a in session.execute(select(Gold.candidate_id, Gold.answer))}
    sids = _synsets(session)
    for sid in sids:
        ensure_initial_subset(session, sid, cfg)
    if writer is not None:
        session.commit()  # the writer must not wait on rows this session holds
    team = _team(session)
    state, verdict_of = _fit(session, sids, config, gold, team, tick, scratch_dir)
    excluded = dict(state.excluded)
    requeues = _open_requeues(session)
    final = FinalPass(method=config.method, cfg=cfg, verdict_of=verdict_of, gold=gold,
                      excluded=excluded, team=team, requeues=requeues)  # fmt: skip
    seen = Written()
    postgresql = session.get_bind().dialect.name == "postgresql"
    several = workers > 1 and len(sids) > write_pool.CHUNK
    if several and postgresql and isinstance(verdict_of, FinalRule):
        session.commit()  # the workers read the initial subsets this session fixed
        url = session.get_bind().url.render_as_string(hide_password=False)
        write_pool.write_in_processes(url, sids, final, seen, workers=workers,
                           tick=lambda done: tick("write", done, len(sids)))  # fmt: skip
    else:
        passes = write_synsets(session, sids, final, seen, writer=writer, postgresql=postgresql)
        for n, _ in enumerate(passes, 1):
            tick("write", n, len(sids))
    _resolve_requeues(session, seen.resolved_requeues)
    _write_records(session, state, seen)
    _write_priors(session, state)
    session.flush()
    session.expire_all()
    return Outcome(synsets=summarise(session), excluded=_names(session, excluded))


def _open_requeues(session: Session) -> dict[int, list[tuple[int, datetime]]]:
    """Per candidate, its open requeues (id, when): few, however large the project."""
    requeues: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for rq, cid, created in session.execute(
        select(Requeue.id, Requeue.candidate_id, Requeue.created_at).where(
            Requeue.resolved_at.is_(None)
        )
    ):
        requeues[cid].append((rq, created))
    return requeues


def _resolve_requeues(session: Session, ids: list[int]) -> None:
    """Close the requeues whose candidates got their fresh votes and a decision."""
    if ids:
        now = datetime.now(UTC)
        for rq in session.scalars(select(Requeue).where(Requeue.id.in_(ids))):
            rq.resolved_at = now


def _fit(
    session: Session,
    sids: list[int],
    config: RecomputeConfig,
    gold: dict[int, bool],
    team: set[int],
    tick: Progress,
    scratch_dir: Path | None,
) -> tuple[SkillState, Verdicts]:
    """The replay and the refit: the final skills, and the method's verdicts with them.
    The refit's arrays live only as long as this (in scratch files if spilled)."""
    player = DynamicConsensus(config=config.dynamic, refit_every=0)
    player.start(CLASSES, gold=gold, team=team)
    with _fit_arrays(config.spill, scratch_dir) as fit:
        _replay(session, sids, player, tick, fit)
        state = player.state_ or SkillState(k=2)
        fit.refit(state, gold, n_iter=player.n_iter, chunk_votes=config.chunk_votes,
                  rounds=hard_items.ROUNDS if config.dynamic.hard_items else 0)  # fmt: skip
        return state, _verdicts(config, config.dynamic, state, fit, gold, team)


@contextmanager
def _fit_arrays(spill: bool, parent: Path | None) -> Iterator[FitArrays]:
    """The refit's arrays, in a scratch folder that goes away with them when spilled."""
    if not spill:
        yield FitArrays()
        return
    with scratch_folder(parent) as folder:
        fit = FitArrays(folder)
        try:
            yield fit
        finally:
            fit.close()


def _replay(
    session: Session, sids: list[int], player: DynamicConsensus, tick: Progress, fit: FitArrays
) -> None:
    """The rule over every vote, synset by synset in cast order, skills carried across;
    what the refit needs of each vote goes into ``fit``, the votes themselves do not."""
    initial = _initial(session)
    # The session is the read-ahead thread's until the stream is closed.
    stream = read_ahead(synset_answers(session, sids))
    try:
        for n, sid in enumerate(sids, 1):
            # Not zip: its reused result tuple may keep an earlier synset's list alive.
            votes = next(stream)
            player.next_group(sid, initial.pop(sid, ()))  # dropped as used: per synset
            player.play(votes, serve_closed=True)
            fit.add(sid, player.next_group(None, ()))
            tick("replay", n, len(sids))
    finally:
        stream.close()


def _verdicts(
    config: RecomputeConfig,
    cfg: DynamicConfig,
    state: SkillState,
    fit: FitArrays,
    gold: dict[int, bool],
    team: set[int],
) -> Verdicts:
    """The method's verdict on an item from its votes, after the refit."""
    if config.method != "dynamic":
        enc, _, _ = fit.kept(state.excluded)
        kept = [(enc.items[i], enc.workers[w], CLASSES[label]) for i, w, label in
                zip(enc.item_idx.tolist(), enc.worker_idx.tolist(), enc.label_idx.tolist(),
                    strict=True)]  # fmt: skip
        other = METHODS[config.method](cfg).fit(kept, gold=gold, classes=CLASSES)
        chosen = {item: _most_likely(other.probas_[item][True]) for item in other.probas_}
        return lambda _sid, cid, _votes, _initial: chosen.get(cid)
    return FinalRule(cfg=cfg, state=state, gold=gold, team=frozenset(team))


def _most_likely(p_yes: float) -> Verdict:
    """Majority and Dawid-Skene decide by the most likely answer; a tie stays undecided."""
    probs = (1.0 - p_yes, p_yes)
    if p_yes == 0.5:
        return Verdict(Decision.undecided, 1, probs, "tie")
    return Verdict("decided", int(p_yes > 0.5), probs)


def _write_records(session: Session, state: SkillState, seen: Written) -> None:
    """Every voter's record as the replay left it: what the web app reads next.

    An excluded annotator's votes count nowhere, so their record shows instead how
    their answers compare with the final decisions: what a curator checks.
    """
    voters = sorted(seen.cast)
    gold = gold_counts(session, voters)
    rows = {q.annotator_id: q for q in session.scalars(select(AnnotatorQuality))}
    for annotator in voters:
        m = np.asarray(seen.measured.get(annotator, state.counts.get(annotator, state.zeros())))
        answers = state.answers.get(annotator, [0.0, 0.0])
        conf = state.confusion_from(m, state.gold_counts.get(annotator))
        row = rows.get(annotator)
        if row is None:
            row = AnnotatorQuality(annotator_id=annotator)
            session.add(row)
        g = gold[annotator]
        row.votes = seen.cast[annotator]
        row.gold_total, row.gold_correct = sum(g.values()), g["yy"] + g["nn"]
        row.sensitivity, row.specificity = conf[1][1], conf[0][0]
        row.nn, row.ny, row.yn, row.yy = (float(v) for v in (m[0, 0], m[0, 1], m[1, 0], m[1, 1]))
        row.answered_no, row.answered_yes = float(answers[0]), float(answers[1])
        reason = state.excluded.get(annotator)
        row.excluded, row.exclusion_reason = reason is not None, reason


def _write_priors(session: Session, state: SkillState) -> None:
    for synset in session.scalars(select(Synset).where(Synset.id.in_(list(state.priors)))):
        synset.prior_yes = float(state.priors[synset.id][1])
        synset.hard_share = float(state.hard.get(synset.id, 0.0))


def _names(session: Session, excluded: dict[int, str]) -> dict[str, str]:
    from synset_builder.db.models import Annotator

    if not excluded:
        return {}
    users = session.execute(
        select(Annotator.id, Annotator.username).where(Annotator.id.in_(excluded))
    ).all()
    return {name: excluded[aid] for aid, name in users}


def summarise(session: Session) -> list[SynsetSummary]:
    """Per synset with any consensus row: decisions, votes per decided item, precision,
    and the share of hard items the last refit learned."""
    stmt = (
        select(
            Synset.wnid, Synset.name, Synset.hard_share, Consensus.decision, func.count(),
            func.sum(Consensus.n_votes), func.sum(Consensus.p_yes),
        )
        .join(Candidate, Candidate.synset_id == Synset.id)
        .join(Consensus, Consensus.candidate_id == Candidate.id)
        .group_by(Synset.wnid, Synset.name, Synset.hard_share, Consensus.decision)
        .order_by(Synset.wnid)
    )  # fmt: skip
    tally: dict[tuple[str, str, float], dict[str, tuple[int, float, float]]] = defaultdict(dict)
    for wnid, name, hard, decision, n, votes, p_sum in session.execute(stmt):
        tally[(wnid, name, hard)][decision] = (int(n), float(votes or 0), float(p_sum or 0.0))
    out = []
    for (wnid, name, hard), by in tally.items():
        zero = (0, 0.0, 0.0)
        acc, rej = by.get(Decision.accepted, zero), by.get(Decision.rejected, zero)
        decided = acc[0] + rej[0]
        out.append(
            SynsetSummary(
                wnid=wnid,
                name=name,
                accepted=acc[0],
                rejected=rej[0],
                undecided=by.get(Decision.undecided, zero)[0],
                pending=by.get(Decision.pending, zero)[0],
                mean_votes=round((acc[1] + rej[1]) / decided, 6) if decided else None,
                # Rounded: a database's float sum depends on its row order.
                precision=round(acc[2] / acc[0], 6) if acc[0] else None,
                hard_share=float(hard) if hard else None,  # as stored, as status says
            )
        )
    return out
