"""The one model of the votes: who is how reliable, and what each item probably is.

Every path that decides an item reads this model: the web app after each
submit (:mod:`.live`), ``synset consensus`` (:mod:`.recompute`) and
``synset consensus evaluate``'s replay (:mod:`.dynamic`). Same votes in the same
order, same state, same decisions.

    P(truth = k | votes) ∝ prior_group(k) · Π_votes confusion_annotator(k, vote)

* **A skeptical newcomer.** An annotator nobody has measured is assumed only a
  little better than chance (:func:`template`: ``skill`` of the way from chance
  to perfect, 0.3 by default, so a binary answer is right 65% of the time, which
  is about what real crowd workers were measured at). A confusion is the
  template plus ``shrink`` pseudo-votes' worth of it, plus the annotator's own
  counts, so gold answers and agreement move it, a little at first.
* **Counts, not point estimates.** The state is per annotator a (truth, vote)
  count matrix: hard counts from gold, soft ones from decided items, where each
  voter is credited against the posterior *without their own vote* (leave one
  out), so agreeing with yourself proves nothing. A refit (EM over the votes so
  far, :meth:`SkillState.refit`) replaces the soft counts; between refits,
  decisions add to them.
* **The evidence must agree.** :meth:`posterior` also returns the votes' own
  log-likelihood per class; the stopping rule accepts a class only when the
  votes favour it, never on the prior alone (a pool of nearly all positives
  would otherwise accept an image two of three voters rejected).
* **Annotators near chance are excluded** (:meth:`SkillState.judge`): after
  ``min_votes`` credited votes, a skill above chance (kappa, 0 = chance, 1 =
  perfect, the same scale for any number of classes) below ``floor``. An
  always-yes or a random clicker scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from synset_builder.consensus.base import Encoded
from synset_builder.consensus.confusion_em import EMResult, e_step, fit_em, normalise, vote_loglik
from synset_builder.consensus.exclusion import ExclusionRule

PRIOR_FLOOR = 0.05  # no class prior below this: a prior alone never decides
# Raw answers are counted (for the always-the-same-answer check) over each
# annotator's first this many votes: a spammer is caught at the tenth, and the web
# app need not write every annotator's record on every submit for ever.
ANSWER_WINDOW = 100

Matrix = Sequence[Sequence[float]] | np.ndarray


def template(k: int, skill: float) -> np.ndarray:
    """A confusion ``skill`` of the way from chance (0) to perfect (1), errors spread evenly."""
    accuracy = 1.0 / k + (1.0 - 1.0 / k) * skill
    out = np.full((k, k), (1.0 - accuracy) / max(k - 1, 1))
    np.fill_diagonal(out, accuracy)
    return out


def kappa(confusion: Matrix) -> float:
    """Balanced accuracy rescaled so chance is 0 and perfect is 1, for any class count."""
    confusion = np.asarray(confusion, dtype=float)
    k = confusion.shape[0]
    if k < 2:
        return 1.0
    balanced = float(np.trace(confusion)) / k
    return (balanced - 1.0 / k) / (1.0 - 1.0 / k)


def _normalise_log(log_p: list[float]) -> list[float]:
    if len(log_p) == 2:
        a, b = log_p
        top = a if a >= b else b
        ea, eb = math.exp(a - top), math.exp(b - top)
        return [ea / (ea + eb), eb / (ea + eb)]
    top = max(log_p)
    ex = [math.exp(v - top) for v in log_p]
    total = sum(ex)
    return [v / total for v in ex]


def _p_hard(h: float, log_hard: float, log_plain: float) -> float:
    """P(hard | votes) from the share ``h`` and the votes' log-likelihood either way
    (:func:`.hard_items.item_hardness` is the same over arrays)."""
    odds = math.log(h) + log_hard - math.log1p(-h) - log_plain
    return 1.0 / (1.0 + math.exp(-odds)) if odds > -700.0 else 0.0


@dataclass
class SkillState:
    """Per-annotator count matrices and per-group priors: everything a decision reads."""

    k: int
    skill: float = 0.3
    shrink: float = 2.0
    # Per annotator, k x k (truth, vote) counts as nested lists (or arrays).
    counts: dict[Hashable, Matrix] = field(default_factory=dict)
    gold_counts: dict[Hashable, Matrix] = field(default_factory=dict)
    priors: dict[Hashable, list[float]] = field(default_factory=dict)
    excluded: dict[Hashable, str] = field(default_factory=dict)
    answers: dict[Hashable, list[float]] = field(default_factory=dict)
    # Per group, the share of items the crowd cannot tell (:mod:`.hard_items`).
    hard: dict[Hashable, float] = field(default_factory=dict)
    _log_rows: dict[Hashable, tuple[list[list[float]], list[list[float]]]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        self.newcomer = template(self.k, self.skill)
        self._pseudo = (self.shrink * self.newcomer + 1e-3).tolist()

    def zeros(self) -> list[list[float]]:
        return [[0.0] * self.k for _ in range(self.k)]

    def answered(self, worker: Hashable, label: int) -> bool:
        """Count a raw answer within the worker's first :data:`ANSWER_WINDOW`; True if
        counted (every vote taken, decided item or not)."""
        got = self.answers.setdefault(worker, [0.0] * self.k)
        if sum(got) >= ANSWER_WINDOW:
            return False
        got[label] += 1.0
        return True

    def confusion(self, worker: Hashable) -> list[list[float]]:
        """Counts (soft + gold) plus ``shrink`` pseudo-votes of the newcomer template."""
        return self.confusion_from(self.counts.get(worker), self.gold_counts.get(worker))

    def confusion_from(self, *parts: Matrix | None) -> list[list[float]]:
        """Rows ``P(vote | truth)`` from count matrices and the pseudo-votes.

        Plain Python, not numpy: the web app builds one per voter of every submitted
        page, and for a 2 x 2 matrix numpy's per-call cost was most of the work."""
        out = []
        for t in range(self.k):
            row = list(self._pseudo[t])
            for part in parts:
                if part is not None:
                    for v in range(self.k):
                        row[v] += float(part[t][v])
            total = sum(row)
            out.append([x / total for x in row])
        return out

    def log_columns(self, worker: Hashable) -> list[list[float]]:
        """Per answer, ``log P(answer | truth = c)`` for every class ``c``."""
        return self._columns(worker)[0]

    def _columns(self, worker: Hashable) -> tuple[list[list[float]], list[list[float]]]:
        """Per answer, ``P(answer | truth = c)`` for every ``c``: as logs, and as is."""
        cols = self._log_rows.get(worker)
        if cols is None:
            conf = self.confusion(worker)
            plain = [[conf[c][v] for c in range(self.k)] for v in range(self.k)]
            cols = ([[math.log(p) for p in col] for col in plain], plain)
            self._log_rows[worker] = cols
        return cols

    def posterior(
        self, group: Hashable, votes: Sequence[tuple[Hashable, int]]
    ) -> tuple[list[float], list[float]]:
        """Class probabilities, and the votes' own log-likelihood per class (no prior).

        Where the group has a share ``h`` of hard items (:mod:`.hard_items`), the
        probabilities are mixed toward the prior by P(hard | votes): on a hard
        item each vote is the voter's usual answer, whatever the truth."""
        prior = self.priors.get(group) or [1.0 / self.k] * self.k
        h = self.hard.get(group, 0.0) if self.hard else 0.0
        if self.k == 2:  # yes/no, every candidate of every submit: the loop unrolled
            no = yes = 0.0
            lik, log_hard = 1.0, 0.0  # P(votes | hard), as a product and its logs
            p_no, p_yes = prior
            rows = self._log_rows
            for worker, label in votes:
                cols = rows.get(worker) or self._columns(worker)
                col = cols[0][label]
                no += col[0]
                yes += col[1]
                if h > 0.0:
                    usual = cols[1][label]
                    lik *= p_no * usual[0] + p_yes * usual[1]
                    if lik < 1e-250:  # long before it underflows
                        log_hard += math.log(lik)
                        lik = 1.0
            a, b = math.log(p_no) + no, math.log(p_yes) + yes
            probs = _normalise_log([a, b])
            if h <= 0.0 or not votes:
                return probs, [no, yes]
            log_plain = max(a, b) + math.log1p(math.exp(-abs(a - b)))
            r = _p_hard(h, log_hard + math.log(lik), log_plain)
            return [(1.0 - r) * probs[0] + r * p_no, (1.0 - r) * probs[1] + r * p_yes], [no, yes]
        evidence = [0.0] * self.k
        log_hard = 0.0
        for worker, label in votes:
            log_col, col = self._columns(worker)
            for c in range(self.k):
                evidence[c] += log_col[label][c]
            if h > 0.0:
                log_hard += math.log(sum(p * x for p, x in zip(prior, col[label], strict=True)))
        log_p = [math.log(prior[c]) + evidence[c] for c in range(self.k)]
        probs = _normalise_log(log_p)
        if h <= 0.0 or not votes:
            return probs, evidence
        top = max(log_p)
        log_plain = top + math.log(sum(math.exp(v - top) for v in log_p))
        r = _p_hard(h, log_hard, log_plain)
        return [(1.0 - r) * p + r * q for p, q in zip(probs, prior, strict=True)], evidence

    def credit(
        self, group: Hashable, votes: Sequence[tuple[Hashable, int]]
    ) -> list[tuple[Hashable, int, list[float]]]:
        """Count a decided item for each voter, against the posterior of the *other* votes.

        Returns what was added, ``(worker, answer, truth probabilities)`` per vote, for
        a caller that stores the counts elsewhere."""
        added = []
        for j, (worker, label) in enumerate(votes):
            others = [v for i, v in enumerate(votes) if i != j]
            probs, _ = self.posterior(group, others)
            added.append((worker, label, probs))
        for worker, label, probs in added:
            row = self.counts.setdefault(worker, self.zeros())
            for c in range(self.k):
                row[c][label] += probs[c]
            self._forget(worker)
        return added

    def _forget(self, worker: Hashable) -> None:
        self._log_rows.pop(worker, None)

    def add_gold(self, worker: Hashable, truth: int, label: int) -> None:
        row = self.gold_counts.setdefault(worker, self.zeros())
        row[truth][label] += 1.0
        self._forget(worker)

    def judge(
        self,
        worker: Hashable,
        rule: ExclusionRule,
        others: Callable[[Hashable], Sequence[float]],
    ) -> str | None:
        """Exclude ``worker`` if the rule says so; returns the reason when newly excluded.

        ``others(worker)``: the answers the other voters gave on the items ``worker``
        voted on (see :meth:`ExclusionRule.one_answer`). Plain Python: the web app
        judges the voters of every closing item and each submitter's first pages.
        """
        if worker in self.excluded:
            return None
        k = range(self.k)
        soft = self.counts.get(worker, None)
        soft = self.zeros() if soft is None else soft
        gold = self.gold_counts.get(worker, None)
        gold = self.zeros() if gold is None else gold
        # Lightly smoothed, not toward the template: a spammer must not look average.
        rows = [[float(soft[t][v]) + 0.5 for v in k] for t in k]
        balanced = sum(rows[t][t] / sum(rows[t]) for t in k) / self.k
        skill = (balanced - 1.0 / self.k) / (1.0 - 1.0 / self.k) if self.k > 1 else 1.0
        credited = sum(float(soft[t][v]) for t in k for v in k)
        gold_total = int(sum(float(gold[t][v]) for t in k for v in k))
        gold_right = int(sum(float(gold[t][t]) for t in k))
        answers = [float(a) for a in self.answers.get(worker, [0.0] * self.k)]
        reason = rule.reason(skill, credited, gold_total, gold_right, self.k) or rule.one_answer(
            answers, lambda: others(worker)
        )
        if reason is not None:
            self.excluded[worker] = reason
        return reason

    def refit(
        self,
        enc: Encoded,
        *,
        gold_idx: np.ndarray,
        group_idx: np.ndarray,
        group_names: Mapping[int, Hashable],
        calibration: np.ndarray,
        n_iter: int = 50,
        warm: EMResult | None = None,
    ) -> EMResult:
        """EM over these votes (leave-one-out credit, gold clamped): new soft counts and
        priors. Gold counts stay as they are.

        Only ``calibration`` items (a boolean per item: those decided so far) credit
        their voters and estimate the priors, as between refits. An item with one
        vote credits its voter against the prior alone; fitted on such items, EM
        learns that everyone answers the commonest class and trusts nobody. A
        weight in [0, 1] per item instead counts an item in part, in the fit and
        in the credits (a boolean gives the same floats as weights of 0 and 1).
        ``warm``: the EM of an earlier refit of the same votes to start from
        (:func:`.confusion_em.fit_em`). Returns this one's.
        """
        res = fit_em(
            enc,
            gold_idx=gold_idx,
            group_idx=group_idx,
            alpha=1e-3,
            shrink=self.shrink,
            loo=True,
            template=self.newcomer,
            prior_alpha=2.0,
            calibration=calibration,
            n_iter=n_iter,
            tol=1e-5,
            warm=warm,
        )
        # Gold votes are in ``gold_counts`` already: credit the others only.
        credit = _loo_credit(enc, res.confusion, res.priors, group_idx)
        credit *= np.asarray(calibration, dtype=float)[enc.item_idx][:, None]  # x 1.0 is exact
        credit[gold_idx[enc.item_idx] >= 0] = 0.0
        soft = np.zeros((enc.n_workers, self.k, self.k))
        np.add.at(soft, (enc.worker_idx, slice(None), enc.label_idx), credit)
        self.counts = {worker: soft[j].tolist() for j, worker in enumerate(enc.workers)}
        priors = _likelihood_prior(enc, res.confusion, group_idx)
        self.priors = {group_names[g]: _floored(p) for g, p in enumerate(priors)}
        self._log_rows.clear()
        return res


def _likelihood_prior(enc: Encoded, confusion: np.ndarray, group_idx: np.ndarray) -> np.ndarray:
    """Per group, the mean over *every* voted item of its votes' likelihood, normalised.

    Not EM's prior: EM's prior feeds its own posteriors, and where one class is
    decided sooner than the other (items stopped early), the prior drifts toward it
    and then rejects the other class "confidently" (a 0.44 positive share read as
    0.18 in one replay). An item with few votes has a flat likelihood, so it pulls
    this estimate toward uniform, never toward a class.
    """
    n_groups = int(group_idx.max()) + 1 if len(group_idx) else 1
    per_vote = vote_loglik(enc, confusion, np.ones(n_groups), group_idx)
    log_lik = np.zeros((enc.n_items, enc.n_classes))
    np.add.at(log_lik, enc.item_idx, per_vote)
    lik = normalise(log_lik)
    sums = np.full((n_groups, enc.n_classes), 2.0)
    np.add.at(sums, group_idx, lik)
    return sums / sums.sum(axis=1, keepdims=True)


def _floored(prior: np.ndarray) -> list[float]:
    p = np.maximum(prior, PRIOR_FLOOR)
    return [float(v) for v in p / p.sum()]


def _loo_credit(
    enc: Encoded, confusion: np.ndarray, priors: np.ndarray, group_idx: np.ndarray
) -> np.ndarray:
    """Per vote, the truth distribution of its item given the item's *other* votes."""
    n_groups = priors.shape[0]
    log_post, per_vote = e_step(enc, confusion, priors, group_idx, np.ones(n_groups))
    return normalise(log_post[enc.item_idx] - per_vote)
